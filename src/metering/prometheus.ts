import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Core } from '../core/core.js';
import type { UsageMeter } from './meter.js';

/**
 * `/metrics` in Prometheus' text format: every usage counter labelled by application and
 * metric (fed by the meter as it counts, so a scrape costs no store read), this node's
 * connections per application, and the process's default metrics.
 */
export class PrometheusExporter {
  readonly registry = new Registry();

  constructor(meter: UsageMeter, localConnections: () => Map<string, number>) {
    const usage = new Counter({
      name: 'roomcast_usage_total',
      help: 'Usage counted per application (one client key each) and metric, on this node',
      labelNames: ['app', 'metric'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'roomcast_connections',
      help: 'Authenticated sockets on this node per application',
      labelNames: ['app'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [app, n] of localConnections()) this.set({ app }, n);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'roomcast_' });
    meter.listen((app, metric, n) => usage.inc({ app, metric }, n));
  }
}

export async function renderMetrics(core: Core): Promise<{ contentType: string; text: string }> {
  const exporter = core.usage.exporter;
  if (!exporter) throw new Error('metrics are not enabled');
  return { contentType: exporter.registry.contentType, text: await exporter.registry.metrics() };
}
