"""The URL rules of Kubernetes' CEL functions `isURL(s)` and `url(s).getScheme()`.

The API server implements both with Go's `net/url.ParseRequestURI` (k8s.io/apiserver
pkg/cel/library/urls.go). The WasmPlugin CRD's `url` rule depends on exactly which strings that
function accepts (`test` is not a request URI, `http://test` is; `http://#%blah$#@` has invalid
userinfo), so this module follows Go's parser rules step by step rather than Python's urllib,
which accepts almost anything.
"""

from dataclasses import dataclass


class URLError(ValueError):
    pass


@dataclass(frozen=True)
class RequestURI:
    scheme: str
    host: str
    path: str


def _is_alpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _is_hex(c: str) -> bool:
    return _is_digit(c) or "a" <= c <= "f" or "A" <= c <= "F"


# Characters a host may hold unescaped, besides letters and digits (Go: shouldEscape, encodeHost).
_HOST_SAFE = set("!$&'()*+,;=:[]<>\"-_.~")
# Characters valid in userinfo besides letters and digits (Go: validUserinfo).
_USERINFO_SAFE = set("-._:~!$&'()*+,;=%@")


def _split_scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if _is_alpha(c):
            continue
        if _is_digit(c) or c in "+-.":
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise URLError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


def _check_escapes(s: str, host: bool) -> None:
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or not (_is_hex(s[i + 1]) and _is_hex(s[i + 2])):
                raise URLError(f"invalid URL escape {s[i:i + 3]!r}")
            if host and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                raise URLError(f"invalid URL escape {s[i:i + 3]!r}")
            i += 3
            continue
        if host and ord(c) < 0x80 and not (_is_alpha(c) or _is_digit(c) or c in _HOST_SAFE):
            raise URLError(f"invalid character {c!r} in host name")
        i += 1


def _valid_optional_port(port: str) -> bool:
    if port == "":
        return True
    return port[0] == ":" and all(_is_digit(c) for c in port[1:])


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise URLError("missing ']' in host")
        if not _valid_optional_port(host[end + 1 :]):
            raise URLError(f"invalid port {host[end + 1:]!r} after host")
    else:
        colon = host.rfind(":")
        if colon != -1 and not _valid_optional_port(host[colon:]):
            raise URLError(f"invalid port {host[colon:]!r} after host")
    _check_escapes(host, host=True)
    return host


def _parse_authority(authority: str) -> str:
    at = authority.rfind("@")
    host = _parse_host(authority[at + 1 :] if at >= 0 else authority)
    if at >= 0:
        userinfo = authority[:at]
        if not all(_is_alpha(c) or _is_digit(c) or c in _USERINFO_SAFE for c in userinfo):
            raise URLError("net/url: invalid userinfo")
        _check_escapes(userinfo, host=False)
    return host


def parse_request_uri(raw: str) -> RequestURI:
    """Go's url.ParseRequestURI: an absolute URI or an absolute path, no fragment splitting."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise URLError("net/url: invalid control character in URL")
    if raw == "":
        raise URLError("empty url")
    if raw == "*":
        return RequestURI("", "", "*")
    scheme, rest = _split_scheme(raw)
    scheme = scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest = rest.split("?", 1)[0]
    if not rest.startswith("/"):
        if scheme:
            return RequestURI(scheme, "", rest)  # opaque, e.g. "mailto:x"
        raise URLError("invalid URI for request")
    host = ""
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        host = _parse_authority(authority)
    _check_escapes(rest, host=False)
    return RequestURI(scheme, host, rest)


def is_url(raw: str) -> bool:
    try:
        parse_request_uri(raw)
    except URLError:
        return False
    return True
