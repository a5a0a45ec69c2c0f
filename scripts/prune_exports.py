"""Removes from a Proxy-Wasm module the callbacks its policies never implement.

The Rust SDK exports every `proxy_on_*` callback, so Envoy enters the VM for each of them: for
every body chunk, trailers, access log and stream end, each such entry a few hundred
nanoseconds to over a microsecond for a call that does nothing. Envoy (proxy-wasm-cpp-host)
skips a callback the module does not export, so dropping the export drops the call. The kept
callbacks are the ones wasmgate's glue (shared/src/module.rs) uses.

Usage: python3 scripts/prune_exports.py MODULE.wasm ...   (rewrites each file in place)
"""

import sys
from pathlib import Path

# Never used by wasmgate: HTTP bodies and trailers, the access-log and done hooks (the SDK's
# defaults do nothing and answer "done"), network-filter and gRPC-stream callbacks; except
# where NEEDS says otherwise.
UNUSED = {
    "proxy_on_request_body", "proxy_on_request_trailers",
    "proxy_on_response_body", "proxy_on_response_trailers",
    "proxy_on_log", "proxy_on_done",
    "proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data",
    "proxy_on_downstream_connection_close", "proxy_on_upstream_connection_close",
    "proxy_on_grpc_receive_initial_metadata", "proxy_on_grpc_receive_trailing_metadata",
    "proxy_on_foreign_function",
}
# The access-log hook ends the tracing policy's span (Policy::on_log) after the last response
# byte, in the modules that run that policy.
NEEDS = {
    "tracing.wasm": {"proxy_on_log"},
    "gateway.wasm": {"proxy_on_log"},
}
EXPORT_SECTION = 7


def uleb(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def encode_uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pruned_exports(body: bytes, unused: set[str]) -> tuple[bytes, list[str]]:
    count, at = uleb(body, 0)
    kept, dropped = [], []
    for _ in range(count):
        start = at
        length, at = uleb(body, at)
        name = body[at:at + length].decode()
        at += length + 1  # the name, then the export kind
        _, at = uleb(body, at)  # the index
        (dropped if name in unused else kept).append((name, body[start:at]))
    entries = b"".join(raw for _, raw in kept)
    return encode_uleb(len(kept)) + entries, [name for name, _ in dropped]


def prune(path: Path) -> list[str]:
    data = path.read_bytes()
    if data[:4] != b"\0asm":
        raise SystemExit(f"{path}: not a Wasm module")
    out, at, dropped = bytearray(data[:8]), 8, []
    while at < len(data):
        section = data[at]
        size, body_at = uleb(data, at + 1)
        body = data[body_at:body_at + size]
        if section == EXPORT_SECTION:
            body, dropped = pruned_exports(body, UNUSED - NEEDS.get(path.name, set()))
        out += bytes([section]) + encode_uleb(len(body)) + body
        at = body_at + size
    path.write_bytes(bytes(out))
    return dropped


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        dropped = prune(Path(arg))
        print(f"  {arg}: {len(dropped)} unused callbacks not exported")
