// The API as the page uses it: every call carries the session's API key, errors keep the API's message.

const KEY_STORAGE = "fakewatch.apiKey"; // sessionStorage only: the key dies with the tab

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_STORAGE),
  set: (key) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

function headers() {
  const key = apiKey.get();
  return key ? { "X-API-Key": key } : {};
}

async function errorOf(status, text) {
  try {
    const { error } = JSON.parse(text);
    return new ApiError(status, error.type, error.message);
  } catch {
    return new ApiError(status, "HTTPError", `the server answered ${status}`);
  }
}

export async function getJson(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await errorOf(response.status, await response.text());
  return response.json();
}

/** An image the API serves behind the key, as an object URL an <img> can show. */
export async function imageUrl(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await errorOf(response.status, await response.text());
  return URL.createObjectURL(await response.blob());
}

/** POST /detect with upload progress (fetch cannot report it), resolving to the job. */
export function submitVideo(file, fields, onProgress) {
  const form = new FormData();
  form.append("file", file);
  for (const [name, value] of Object.entries(fields)) if (value) form.append(name, value);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/detect");
    for (const [name, value] of Object.entries(headers())) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    request.onload = async () => {
      if (request.status === 200 || request.status === 202) resolve(JSON.parse(request.responseText));
      else reject(await errorOf(request.status, request.responseText));
    };
    request.onerror = () => reject(new ApiError(0, "NetworkError", "the server could not be reached"));
    request.send(form);
  });
}
