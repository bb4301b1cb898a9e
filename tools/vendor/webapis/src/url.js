// URL and URLSearchParams: whatwg-url, the URL Standard's reference implementation.
export { URL, URLSearchParams } from "whatwg-url";
