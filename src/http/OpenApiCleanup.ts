/**
 * `@effect/platform` documents a 400 `HttpApiDecodeError` on every endpoint. This API never sends
 * it: bodies are decoded by the handlers into `validation_error`, and path parameters are plain
 * strings. This transform (an `OpenApi.Transform` annotation) takes it out of the document, so a
 * client generated from `/openapi.json` sees the errors that really come back.
 */

type Json = Record<string, unknown>

const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const DECODE_ERROR_REF = "#/components/schemas/HttpApiDecodeError"
const isDecodeErrorRef = (u: unknown): boolean => isObject(u) && u["$ref"] === DECODE_ERROR_REF

/** The 400 response without the decode error; undefined when nothing else was documented for 400. */
const without400DecodeError = (response: Json): Json | undefined => {
  const content = response["content"]
  if (!isObject(content)) return response
  const media = content["application/json"]
  if (!isObject(media)) return response
  const schema = media["schema"]
  if (isDecodeErrorRef(schema)) return undefined
  if (!isObject(schema) || !Array.isArray(schema["anyOf"])) return response
  const rest = schema["anyOf"].filter((member) => !isDecodeErrorRef(member))
  return {
    ...response,
    description: "The request is malformed (validation_error) or the payment was declined (payment_failed)",
    content: { ...content, "application/json": { ...media, schema: rest.length === 1 ? rest[0] : { anyOf: rest } } }
  }
}

/** Removes the undocumented-in-practice `HttpApiDecodeError` from every operation's responses. */
export const removeDecodeErrors = (spec: Json): Json => {
  const paths = spec["paths"]
  if (!isObject(paths)) return spec
  const cleanedPaths: Json = {}
  for (const [path, item] of Object.entries(paths)) {
    if (!isObject(item)) {
      cleanedPaths[path] = item
      continue
    }
    const cleanedItem: Json = {}
    for (const [method, operation] of Object.entries(item)) {
      const responses = isObject(operation) ? operation["responses"] : undefined
      if (!isObject(operation) || !isObject(responses) || !isObject(responses["400"])) {
        cleanedItem[method] = operation
        continue
      }
      const { ["400"]: bad, ...others } = responses
      const kept = isObject(bad) ? without400DecodeError(bad) : bad
      cleanedItem[method] = { ...operation, responses: kept === undefined ? others : { ...others, "400": kept } }
    }
    cleanedPaths[path] = cleanedItem
  }
  const components = spec["components"]
  const schemas = isObject(components) ? components["schemas"] : undefined
  if (!isObject(components) || !isObject(schemas)) return { ...spec, paths: cleanedPaths }
  const { HttpApiDecodeError: _decodeError, Issue: _issue, PropertyKey: _propertyKey, ...otherSchemas } = schemas
  return { ...spec, paths: cleanedPaths, components: { ...components, schemas: otherSchemas } }
}
