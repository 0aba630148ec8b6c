// The review page: submit, follow the job, show verdict, people, faces and heatmaps; history.

import { ApiError, apiKey, getJson, imageUrl, submitVideo } from "./api.js";
import { renderTimeline } from "./timeline.js";

const POLL_MS = 1000;
const FINISHED = new Set(["succeeded", "failed", "expired"]);
const $ = (id) => document.getElementById(id);
let pendingAfterKey = null; // what to retry once a key is given
let currentJob = null;
let currentFace = null;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function say(message) {
  $("status").textContent = message;
}

/** Run `action`; on 401 ask for a key and run it again once one is given. */
async function withKey(action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      apiKey.clear();
      $("key-reason").textContent = `${error.message}. The key is kept in this tab only (session storage).`;
      pendingAfterKey = action;
      $("key-dialog").showModal();
      return undefined;
    }
    showError(error.message);
    return undefined;
  }
}

$("key-form").addEventListener("submit", () => {
  apiKey.set($("key-input").value.trim());
  $("key-input").value = "";
  const action = pendingAfterKey;
  pendingAfterKey = null;
  if (action) withKey(action);
});

// --- Submit -----------------------------------------------------------------------------------

const zone = $("drop-zone");
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("dragging");
  if (event.dataTransfer.files.length) {
    $("file-input").files = event.dataTransfer.files;
    say(`Selected ${event.dataTransfer.files[0].name}`);
  }
});

$("submit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("file-input").files[0];
  if (!file) return showError("Choose a video or image first.");
  showError("");
  withKey(() => upload(file));
});

async function upload(file) {
  $("upload").hidden = false;
  $("upload-progress").value = 0;
  say(`Uploading ${file.name}`);
  const fields = { frames: $("frames-input").value, preset: $("preset-select").value };
  const job = await submitVideo(file, fields, (fraction) => { $("upload-progress").value = fraction; });
  $("upload-progress").value = 1;
  await follow(job.id);
  refreshHistory();
}

async function follow(jobId) {
  $("job").hidden = false;
  for (;;) {
    const job = await getJson(`/jobs/${jobId}`);
    const stage = job.progress ? job.progress.stage : job.status;
    $("job-stage").textContent = `${job.status}: ${stage.replaceAll("_", " ")}`;
    if (job.progress) $("job-progress").value = job.progress.fraction;
    if (FINISHED.has(job.status)) return showJob(job);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// --- Result -----------------------------------------------------------------------------------

function showJob(job) {
  $("job-progress").value = 1;
  for (const id of ["verdict", "people", "viewer"]) $(id).hidden = true;
  if (job.status !== "succeeded") {
    const reason = job.error ? job.error.message : `the job is ${job.status}`;
    showError(`Job ${job.id} ${job.status}: ${reason}`);
    return;
  }
  showError("");
  currentJob = job;
  showVerdict(job.result);
  showPeople(job);
  say(`Job ${job.id} finished.`);
}

function showVerdict(result) {
  const label = $("verdict-label");
  label.textContent = result.label ?? "no face";
  label.className = `label ${result.label ?? ""}`;
  $("verdict-probability").textContent = result.probability === null ? "none (no face found)" : result.probability.toFixed(3);
  $("verdict-threshold").textContent = result.threshold.toFixed(3);
  $("verdict-preset").textContent = result.preset ? `preset ${result.preset}` : "threshold given as a number";
  $("verdict-file").textContent = `${result.file ?? ""}: ${result.sampled_frames} frames sampled, ${result.aggregation} aggregation`;
  $("models-body").replaceChildren(...result.models.map((model) => {
    const row = document.createElement("tr");
    for (const text of [model.id, model.architecture]) row.appendChild(document.createElement("td")).textContent = text;
    const code = row.appendChild(document.createElement("td")).appendChild(document.createElement("code"));
    code.textContent = model.sha256 ? model.sha256.slice(0, 12) : "unrecorded";
    code.title = model.sha256;
    return row;
  }));
  $("verdict").hidden = false;
}

function pointsOf(result, identity) {
  const points = [];
  for (const frame of result.frames) {
    frame.faces.forEach((face, position) => {
      if (face.identity === identity) {
        points.push({ time: frame.timestamp, probability: face.probability, frame: frame.index, face: position });
      }
    });
  }
  return points;
}

function showPeople(job) {
  const result = job.result;
  const duration = result.video.duration ?? 0;
  const rows = result.identities.map((person) => {
    const points = pointsOf(result, person.identity);
    const strongest = points.reduce((a, b) => (b.probability > a.probability ? b : a));
    const row = document.createElement("li");
    row.className = "identity-row";
    row.dataset.identity = person.identity;
    const thumb = row.appendChild(document.createElement("img"));
    thumb.alt = `Person ${person.identity}, the face scored most fake`;
    withKey(async () => { thumb.src = await imageUrl(facePath(job.id, strongest)); });
    const summary = row.appendChild(document.createElement("div"));
    summary.innerHTML = `<strong>Person ${person.identity}</strong><br>`;
    const tag = summary.appendChild(document.createElement("span"));
    tag.className = `label ${person.label}`;
    tag.textContent = person.label;
    summary.append(` P(fake) ${person.probability.toFixed(3)}`, document.createElement("br"),
      `${person.faces} faces, ${person.first_timestamp.toFixed(1)}-${person.last_timestamp.toFixed(1)} s`);
    row.appendChild(renderTimeline(points, duration, result.threshold,
      `Person ${person.identity}: P(fake) per frame over time`,
      (point, element) => showFace(job.id, point, element)));
    return row;
  });
  $("people-list").replaceChildren(...rows);
  $("people").hidden = rows.length === 0;
  if (rows.length === 0) say("No face was found: fakewatch gives no probability without a face.");
}

function facePath(jobId, point) {
  return `/jobs/${jobId}/faces/${point.frame}/${point.face}.jpg`;
}

function showFace(jobId, point, element) {
  document.querySelectorAll(".point.selected").forEach((p) => p.classList.remove("selected"));
  element.classList.add("selected");
  currentFace = { jobId, point };
  $("viewer").hidden = false;
  $("viewer-caption").textContent = `Frame ${point.frame} at ${point.time.toFixed(2)} s, face ${point.face}: P(fake) ${point.probability.toFixed(3)}`;
  $("heatmap-img").hidden = true;
  $("heatmap-button").disabled = false;
  $("crop-img").alt = `Face crop from frame ${point.frame}`;
  withKey(async () => { $("crop-img").src = await imageUrl(facePath(jobId, point)); });
}

$("heatmap-button").addEventListener("click", () => {
  if (!currentFace) return;
  const { jobId, point } = currentFace;
  $("heatmap-button").disabled = true;
  say("Computing the heatmap: each region of the face is hidden in turn and the models score again.");
  withKey(async () => {
    const image = $("heatmap-img");
    image.src = await imageUrl(`/jobs/${jobId}/faces/${point.frame}/${point.face}/heatmap.png`);
    image.alt = `Heatmap over the face from frame ${point.frame}`;
    image.hidden = false;
    say("Heatmap ready.");
  }).finally(() => { $("heatmap-button").disabled = false; });
});

// --- History ----------------------------------------------------------------------------------

function verdictText(verdict) {
  if (!verdict) return "";
  if (verdict.status === "no_face") return "no face";
  return `${verdict.label} ${verdict.probability.toFixed(3)}`;
}

function refreshHistory() {
  return withKey(async () => {
    const page = await getJson("/jobs?limit=20");
    $("history-body").replaceChildren(...page.items.map((job) => {
      const row = document.createElement("tr");
      const cells = [new Date(job.created_at).toLocaleString(), job.upload.filename ?? job.id, job.status,
        verdictText(job.verdict)];
      for (const text of cells) row.appendChild(document.createElement("td")).textContent = text;
      const open = row.appendChild(document.createElement("td")).appendChild(document.createElement("button"));
      open.type = "button";
      open.textContent = "Open";
      open.setAttribute("aria-label", `Open job for ${job.upload.filename ?? job.id}`);
      open.addEventListener("click", () => withKey(() => follow(job.id)));
      return row;
    }));
  });
}

$("history-refresh").addEventListener("click", refreshHistory);
refreshHistory().then(describePresets);

// --- Presets ----------------------------------------------------------------------------------

/** Label each preset with what it measured (GET /models); before a worker reports, keep the names. */
async function describePresets() {
  let models;
  try {
    models = await getJson("/models");
  } catch {
    return;
  }
  for (const preset of models.presets ?? []) {
    const option = $("preset-select").querySelector(`option[value="${preset.name}"]`);
    if (!option) continue;
    option.textContent = `${preset.name}: flags ${Math.round(preset.real_flagged * 100)}% of real videos, `
      + `catches ${Math.round(preset.fakes_caught * 100)}% of fakes${preset.default ? " (default)" : ""}`;
  }
}
