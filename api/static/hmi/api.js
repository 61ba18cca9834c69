// Calls to /api/v1 from the HMI: the session cookie rides along; mutating requests also send
// the session's CSRF token. Errors arrive as problem+json and are thrown as ApiError.
let csrfToken = null;

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || String(status));
    this.status = status;
    this.problem = problem || {};
  }
}

export function setCsrfToken(token) { csrfToken = token; }

export async function request(method, path, body) {
  const headers = {Accept: "application/json"};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = path => request("GET", path);
export const post = (path, body) => request("POST", path, body);
