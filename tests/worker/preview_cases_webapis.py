"""What a REPL user sees of the web APIs (webapis.js): cases for the golden table.

The format is preview_cases.py's; its tables join these tuples. Node's REPL is the model:
URL, URLSearchParams, TextEncoder, TextDecoder, AbortController and AbortSignal preview as
Node's util.inspect prints them. Node prints an Event with its type and timeStamp; here
it shows only its own `isTrusted`, so no case pins that down.
"""

from __future__ import annotations

from .preview_cases import ConsoleCase, ExceptionCase, ValueCase, pattern

V = ValueCase

VALUES: tuple[ValueCase, ...] = (
    # -- URL, URLSearchParams
    V("typeof URL", "string", "function", "function"),
    V(
        "new URL('https://user:pw@example.com:8080/a/b?x=1&y=2#top')",
        "object",
        "URL {\n"
        "  href: 'https://user:pw@example.com:8080/a/b?x=1&y=2#top',\n"
        "  origin: 'https://example.com:8080',\n"
        "  protocol: 'https:',\n"
        "  username: 'user',\n"
        "  password: 'pw',\n"
        "  host: 'example.com:8080',\n"
        "  hostname: 'example.com',\n"
        "  port: '8080',\n"
        "  pathname: '/a/b',\n"
        "  search: '?x=1&y=2',\n"
        "  searchParams: URLSearchParams { 'x' => '1', 'y' => '2' },\n"
        "  hash: '#top'\n"
        "}",
    ),
    V(
        "new URL('../c?d#e', 'https://example.com/a/b/').href",
        "string",
        "https://example.com/a/c?d#e",
        "https://example.com/a/c?d#e",
    ),
    V(
        "new URL('HTTP://EXAMPLE.com:80/%7e/./x/../y').href",
        "string",
        "http://example.com/%7e/y",
        "http://example.com/%7e/y",
    ),
    V("new URL('http://münchen.de/').hostname", "string", "xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
    V("new URL('http://0x7f.1/').host", "string", "127.0.0.1", "127.0.0.1"),
    V("URL.canParse('no scheme')", "boolean", "false", False),
    V("URL.parse('/p', 'file:///C:/dir/').href", "string", "file:///C:/p", "file:///C:/p"),
    V(
        "new URL('blob:https://a.example/x').origin",
        "string",
        "https://a.example",
        "https://a.example",
    ),
    V(
        "new URLSearchParams('q=a+b&q=%C3%A9&r')",
        "object",
        "URLSearchParams { 'q' => 'a b', 'q' => 'é', 'r' => '' }",
    ),
    V("new URLSearchParams()", "object", "URLSearchParams {}"),
    V(
        "new URLSearchParams({ a: '1', b: 'two words' }).toString()",
        "string",
        "a=1&b=two+words",
        "a=1&b=two+words",
    ),
    V(
        "[...new URLSearchParams([['b', '2'], ['a', '1']])]",
        "array",
        "[ [ 'b', '2' ], [ 'a', '1' ] ]",
        [["b", "2"], ["a", "1"]],
    ),
    V(
        "const u = new URL('https://x.example/?b=2&a=1'); u.searchParams.sort();"
        " u.searchParams.append('c', '&'); u.search",
        "string",
        "?a=1&b=2&c=%26",
        "?a=1&b=2&c=%26",
    ),
    # -- TextEncoder, TextDecoder
    V("new TextEncoder().encode('€')", "object", "Uint8Array(3) [ 226, 130, 172 ]"),
    V("new TextEncoder()", "object", "TextEncoder { encoding: 'utf-8' }"),
    V(
        "new TextDecoder('UTF-16LE', { fatal: true })",
        "object",
        "TextDecoder { encoding: 'utf-16le', fatal: true, ignoreBOM: false }",
    ),
    V(
        "new TextEncoder().encodeInto('héllo', new Uint8Array(4))",
        "object",
        "{ read: 3, written: 4 }",
        {"read": 3, "written": 4},
    ),
    V(
        "new TextDecoder().decode(new Uint8Array([0xEF, 0xBB, 0xBF, 0x68, 0xC3, 0xA9, 0xFF]))",
        "string",
        "hé\ufffd",
        "hé\ufffd",
    ),
    V(
        "new TextDecoder('latin1').decode(new Uint8Array([0x80, 0xE9]))",
        "string",
        "€é",
        "€é",
    ),
    # -- structuredClone
    V(
        "structuredClone({ a: [1, { b: 2n }], d: new Date(0) })",
        "object",
        "{ a: [ 1, { b: 2n } ], d: 1970-01-01T00:00:00.000Z }",
    ),
    V(
        "structuredClone(new Map([['k', new Set([1])]]))",
        "map",
        "Map(1) { 'k' => Set(1) { 1 } }",
    ),
    V(
        "const o = { n: 1 }; o.self = o; const c = structuredClone(o); [c.self === c, c !== o]",
        "array",
        "[ true, true ]",
        [True, True],
    ),
    # -- events and abort
    V(
        "new AbortController()",
        "object",
        "AbortController { signal: AbortSignal { aborted: false } }",
    ),
    V("AbortSignal.abort('why')", "object", "AbortSignal { aborted: true }"),
    V("AbortSignal.abort('why').reason", "string", "why", "why"),
    V(
        "AbortSignal.abort().reason",
        "error",
        pattern("DOMException [AbortError]: This operation was aborted{FRAMES}"),
    ),
    V("new CustomEvent('ping', { detail: { n: 1 } }).detail", "object", "{ n: 1 }", {"n": 1}),
    V("new EventTarget()", "object", "EventTarget {}"),
    V(
        "const t = new EventTarget(); t.addEventListener('x', (e) => e.preventDefault());"
        " t.dispatchEvent(new Event('x', { cancelable: true }))",
        "boolean",
        "false",
        False,
    ),
    # -- crypto
    V("crypto.getRandomValues(new Uint8Array(4)).length", "number", "4", 4),
    V(
        "/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/"
        ".test(crypto.randomUUID())",
        "boolean",
        "true",
        True,
    ),
    V(
        "new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc')))"
        ".toHex()",
        "string",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ),
    V(
        "await crypto.subtle.digest({ name: 'sha-1' }, new ArrayBuffer(0))",
        "object",
        "ArrayBuffer {\n"
        "  [Uint8Contents]: <da 39 a3 ee 5e 6b 4b 0d 32 55 bf ef 95 60 18 90 af d8 07 09>,\n"
        "  byteLength: 20\n"
        "}",
    ),
    V(
        "[Object.prototype.toString.call(crypto), Object.prototype.toString.call(crypto.subtle)]",
        "array",
        "[ '[object Crypto]', '[object SubtleCrypto]' ]",
        ["[object Crypto]", "[object SubtleCrypto]"],
    ),
    V(
        "['URL', 'TextEncoder', 'crypto', 'structuredClone'].filter((n) => Object.keys(globalThis)"
        ".includes(n))",
        "array",
        "[]",
        [],
    ),
)

C = ConsoleCase

CONSOLE: tuple[ConsoleCase, ...] = (
    C("console.log(new URLSearchParams('a=1'))", (("log", "URLSearchParams { 'a' => '1' }"),)),
    C("console.log(`${new URL('HTTP://A.example/b c')}`)", (("log", "http://a.example/b%20c"),)),
    C(
        "console.log(new TextDecoder().encoding, new TextEncoder().encode('hi'))",
        (("log", "utf-8 Uint8Array(2) [ 104, 105 ]"),),
    ),
    C(
        "const ac = new AbortController();"
        " ac.signal.addEventListener('abort', () => console.log('aborted:', ac.signal.reason));"
        " ac.abort('done')",
        (("log", "aborted: done"),),
    ),
    C(
        "const et = new EventTarget();"
        " et.addEventListener('x', (e) => console.log(e.type, e instanceof Event), { once: true });"
        " et.dispatchEvent(new Event('x')); et.dispatchEvent(new Event('x'))",
        (("log", "x true"),),
    ),
    C(
        "await new Promise((resolve) => { const s = AbortSignal.timeout(1);"
        " s.onabort = () => { console.log(s.reason.name); resolve(); };"
        " setTimeout(resolve, 50); })",
        (("log", "TimeoutError"),),
    ),
)

E = ExceptionCase

EXCEPTIONS: tuple[ExceptionCase, ...] = (
    E("new URL('no scheme')", "TypeError: Invalid URL: no scheme", "TypeError"),
    E(
        "new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xFF]))",
        "TypeError: Input is not well-formed utf8",
        "TypeError",
    ),
    E("new TextDecoder('klingon')", "RangeError: Unknown encoding", "RangeError"),
    E(
        "structuredClone({ f() {} })",
        "DataCloneError: function could not be cloned.",
        "DataCloneError",
        pattern("DOMException [DataCloneError]: function could not be cloned.{FRAMES}"),
    ),
    E(
        "crypto.getRandomValues(new Float32Array(1))",
        "TypeMismatchError: The data argument must be an integer-type TypedArray",
        "TypeMismatchError",
    ),
    E(
        "await crypto.subtle.digest('MD5', new Uint8Array(1))",
        "NotSupportedError: Unrecognized algorithm name: MD5",
        "NotSupportedError",
    ),
    E(
        "AbortSignal.abort(new RangeError('stop')).throwIfAborted()",
        "RangeError: stop",
        "RangeError",
    ),
    E("AbortSignal.abort(42).throwIfAborted()", "Uncaught 42"),
    E("new AbortSignal()", "TypeError: Illegal constructor", "TypeError"),
    E(
        "URLSearchParams.prototype.get.call({}, 'a')",
        "TypeError: 'get' called on an object that is not a valid instance of URLSearchParams.",
        "TypeError",
    ),
)
