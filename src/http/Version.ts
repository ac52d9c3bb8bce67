import packageJson from "../../package.json" with { type: "json" }

/** The service's version, from package.json: in `/health` and the OpenAPI document. */
export const VERSION: string = packageJson.version
