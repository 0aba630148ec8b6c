"""`fakewatch chaos`: the fault, load and fuzz suite (issue 13).

It builds its own little network of hosts (Linux network namespaces, or loopback processes where
namespaces cannot be made), runs Redis, a gateway and two workers on them, injects faults, loads
and fuzzes the API, reconciles a client-side ledger of every job and writes a JSON + Markdown
report. Every address it targets is one it created.
"""
