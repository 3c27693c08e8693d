/**
 * A real Prometheus (Debian's `prometheus`) for the exporter tests: a
 * configuration in a temporary directory that scrapes one target every
 * second, listening on 127.0.0.1 only, killed at its deadline like any
 * process; and its HTTP query API.
 */
import { Spawned } from "./process.ts";

/** A free TCP port on 127.0.0.1 now (the listener is closed again). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** One sample of an instant vector: labels and value. */
export interface VectorSample {
  metric: Record<string, string>;
  value: number;
  /** Seconds since the epoch (of the evaluation, or of the sample for timestamp()). */
  time: number;
}

/** A Prometheus server scraping `targets` (HOST:PORT) every second. */
export class PrometheusServer implements AsyncDisposable {
  private constructor(
    readonly dir: string,
    readonly process: Spawned,
    readonly port: number,
  ) {}

  static async start(targets: string[], deadlineMs: number): Promise<PrometheusServer> {
    const dir = await Deno.makeTempDir({ prefix: "bpftk-prometheus-" });
    await Deno.writeTextFile(
      `${dir}/prometheus.yml`,
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "scrape_configs:",
        "  - job_name: bpftk",
        "    static_configs:",
        `      - targets: ${JSON.stringify(targets)}`,
        "",
      ].join("\n"),
    );
    const port = freePort();
    const process = new Spawned("prometheus", [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ], { deadlineMs, cwd: dir });
    return new PrometheusServer(dir, process, port);
  }

  /** An instant query at `time` (seconds; default now). */
  async query(promql: string, time?: number): Promise<VectorSample[]> {
    const params = new URLSearchParams({ query: promql });
    if (time !== undefined) params.set("time", time.toFixed(3));
    const res = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?${params}`, {
      signal: AbortSignal.timeout(5000),
    });
    const body = await res.json();
    if (body.status !== "success") throw new Error(`${promql}: ${JSON.stringify(body)}`);
    if (body.data.resultType === "scalar") {
      return [{ metric: {}, time: body.data.result[0], value: Number(body.data.result[1]) }];
    }
    return body.data.result.map((
      r: { metric: Record<string, string>; value: [number, string] },
    ) => ({
      metric: r.metric,
      time: r.value[0],
      value: Number(r.value[1]),
    }));
  }

  /** The one value of `promql` (throws unless exactly one sample). */
  async value(promql: string, time?: number): Promise<number> {
    const r = await this.query(promql, time);
    if (r.length !== 1) throw new Error(`${promql}: ${r.length} samples, not 1`);
    return r[0].value;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.process.stop("SIGTERM", 10_000).catch(() => this.process.killTree());
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
