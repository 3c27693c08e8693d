/**
 * The HTTP side of the Prometheus exporters: GET /metrics answers with the
 * families `collect()` returns at that moment, as Prometheus text 0.0.4, or
 * OpenMetrics 1.0 when the Accept header asks for it. Deno.serve, one
 * listener; the server closes when disposed.
 *
 * @module
 */
import { UsageError } from "../cli/usage.ts";
import type { MetricFamily } from "./metrics.ts";
import { CONTENT_TYPE, formatExposition, negotiateFormat } from "./prometheus_text.ts";

/** The port ebpf_exporter registered with Prometheus, on loopback only. */
export const DEFAULT_LISTEN = "127.0.0.1:9435";

/** A listen address, parsed. */
export interface ListenAddress {
  /** Address to bind ("127.0.0.1", "0.0.0.0" for every interface). */
  hostname: string;
  /** TCP port. */
  port: number;
}

/**
 * "HOST:PORT", "[V6]:PORT", or ":PORT" (every interface, as Prometheus'
 * exporters read it); a bad one is a usage error naming `flag`.
 */
export function parseListen(text: string, flag = "--prometheus"): ListenAddress {
  const m = text.match(/^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(
      `invalid ${flag} address '${text}': expected HOST:PORT (as ${DEFAULT_LISTEN})`,
    );
  }
  const hostname = m[1] ?? (m[2] === "" ? "0.0.0.0" : m[2]);
  return { hostname, port };
}

/** The URL scrapers use, for the ready line. */
export function metricsUrl(addr: ListenAddress): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `http://${host}:${addr.port}/metrics`;
}

/** A running exporter endpoint. */
export interface MetricsServer extends AsyncDisposable {
  /** The address bound (the real port when 0 was asked). */
  readonly addr: ListenAddress;
  /** Scrapes answered so far. */
  readonly scrapes: number;
}

/** Serves `collect()` on GET /metrics at `addr` until disposed. */
export function serveMetrics(
  addr: ListenAddress,
  collect: () => MetricFamily[],
): MetricsServer {
  let scrapes = 0;
  const server = Deno.serve({
    hostname: addr.hostname,
    port: addr.port,
    onListen: () => {},
  }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/metrics") {
      if (url.pathname === "/") {
        return new Response('<html><body><a href="/metrics">/metrics</a></body></html>\n', {
          headers: { "content-type": "text/html; charset=utf-8" },
        });
      }
      return new Response("not found\n", { status: 404 });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
    }
    const format = negotiateFormat(req.headers.get("accept"));
    let body: string;
    try {
      body = formatExposition(collect(), format);
    } catch (e) {
      return new Response(`collect failed: ${e instanceof Error ? e.message : e}\n`, {
        status: 500,
      });
    }
    scrapes++;
    return new Response(req.method === "HEAD" ? null : body, {
      headers: { "content-type": CONTENT_TYPE[format] },
    });
  });
  const bound = server.addr as Deno.NetAddr;
  return {
    addr: { hostname: addr.hostname, port: bound.port },
    get scrapes() {
      return scrapes;
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}
