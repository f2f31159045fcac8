"""Load generation from a separate process: wrk (Debian's package) with a generated Lua
script, or, where wrk cannot be had, `bench.aload` (an asyncio HTTP/1.1 client).

A workload is one POST body template with placeholders, filled per request:
`@UNIQUE@` (unique per request: fresh order ids and idempotency keys), and one
`@NAME@` per entry of `choices` (a random pick per request: members, cursors, amounts);
`tokens` is the pool a random `Authorization: Bearer` is drawn from (None: no header).
Every response is checked: HTTP 200, no top-level `errors`, no `userErrors` entry; a
run with failures is reported as such, so a fast error page never passes for throughput.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Workload:
    name: str
    body: str
    tokens: list[str] | None = None
    choices: dict[str, list[str]] = field(default_factory=dict)
    path: str = "/graphql"


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    failures: int
    errors: int
    sample: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LoadResult:
        seconds = d["duration_us"] / 1e6
        return cls(requests=d["requests"], seconds=seconds,
                   rps=d["requests"] / seconds if seconds else 0.0,
                   p50_ms=d["p50"] / 1000, p90_ms=d["p90"] / 1000, p99_ms=d["p99"] / 1000,
                   max_ms=d["max"] / 1000, failures=d["failures"],
                   errors=d.get("errors", 0), sample=d.get("sample", ""))


def _lua_str(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=True)
    if "\\u" in encoded:
        raise ValueError("workload strings must be ASCII")
    return encoded


def lua_script(w: Workload, run_tag: str) -> str:
    tokens = "nil" if w.tokens is None else "{" + ",".join(_lua_str(t) for t in w.tokens) + "}"
    choices = "{" + ",".join(
        f"[{_lua_str('@' + k + '@')}]={{" + ",".join(_lua_str(v) for v in vs) + "}"
        for k, vs in w.choices.items()) + "}"
    return f"""
local template = {_lua_str(w.body)}
local tokens = {tokens}
local choices = {choices}
local run_tag = {_lua_str(run_tag)}
local counter = 0
failures = 0
sample = ""
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(tid * 7919 + os.time())
end

request = function()
  counter = counter + 1
  local body = template:gsub("@UNIQUE@", run_tag .. "-" .. tid .. "-" .. counter)
  for key, list in pairs(choices) do
    body = body:gsub(key, list[math.random(#list)])
  end
  local headers = {{["Content-Type"] = "application/json"}}
  if tokens then
    headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  end
  return wrk.format("POST", {_lua_str(w.path)}, headers, body)
end

response = function(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) or body:find('"userErrors":[{{', 1, true)
     or body:find('"userErrors": [{{', 1, true) then
    failures = failures + 1
    if sample == "" then sample = status .. " " .. body:sub(1, 300) end
  end
end

done = function(summary, latency, requests)
  local f, s = 0, ""
  for _, t in ipairs(threads) do
    f = f + (t:get("failures") or 0)
    local ts = t:get("sample") or ""
    if s == "" then s = ts end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,' ..
    '"failures":%d,"errors":%d,"sample":%q}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, f,
    e.connect + e.read + e.write + e.status + e.timeout, s))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run(w: Workload, url: str, seconds: float, connections: int = 16, threads: int = 2,
        client: str = "auto") -> LoadResult:
    """Drive `w` at `url` (base, e.g. http://127.0.0.1:8000) from a separate process."""
    run_tag = uuid.uuid4().hex[:8]
    use_wrk = client == "wrk" or (client == "auto" and have_wrk())
    with tempfile.TemporaryDirectory(prefix="lgbench-") as tmp:
        if use_wrk:
            script = os.path.join(tmp, "load.lua")
            with open(script, "w") as f:
                f.write(lua_script(w, run_tag))
            cmd = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}",
                   f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", script,
                   url + w.path]
        else:
            spec = os.path.join(tmp, "load.json")
            with open(spec, "w") as f:
                json.dump({"body": w.body, "tokens": w.tokens, "choices": w.choices,
                           "path": w.path, "run_tag": run_tag}, f)
            cmd = [sys.executable, "-m", "bench.aload", spec, url, str(seconds),
                   str(connections)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                             check=False)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return LoadResult.from_json(json.loads(line[len("WRKJSON "):]))
    raise RuntimeError(f"load client failed ({' '.join(cmd[:3])}): {out.stdout[-500:]} "
                       f"{out.stderr[-1000:]}")
