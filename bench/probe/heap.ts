/**
 * A preload for the soak (`node --expose-gc --import ./dist/bench/probe/heap.js dist/src/bin/api.js`):
 * serves the process's heap after a full GC on a side port, so the bench can sample it without
 * any change to the api. `HEAP_PROBE_PORT` names the port (127.0.0.1 only); without it, or
 * without `--expose-gc`, the preload does nothing.
 *
 *   GET /heap -> {"heapUsedAfterGc": bytes, "heapTotal": bytes, "rss": bytes, "external": bytes}
 */
import { createServer } from "node:http"
import { getHeapStatistics } from "node:v8"

const port = Number(process.env["HEAP_PROBE_PORT"] ?? "")
const collect = globalThis.gc

if (Number.isInteger(port) && port > 0 && collect !== undefined) {
  const server = createServer((req, res) => {
    if (req.url !== "/heap") {
      res.writeHead(404).end()
      return
    }
    // Two passes: the first may leave objects that only the second finds unreachable (weak refs, finalizers).
    collect()
    collect()
    const memory = process.memoryUsage()
    const body = JSON.stringify({
      heapUsedAfterGc: getHeapStatistics().used_heap_size,
      heapTotal: memory.heapTotal,
      rss: memory.rss,
      external: memory.external
    })
    res.writeHead(200, { "content-type": "application/json" }).end(body)
  })
  server.listen(port, "127.0.0.1")
  // the probe must never keep the process alive on its own
  server.unref()
}
