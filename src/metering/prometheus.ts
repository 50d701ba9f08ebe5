import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Core } from '../core/core.js';
import type { SocketBuffers } from '../realtime/types.js';
import type { UsageMeter } from './meter.js';

/** What this node's realtime layer reports, read at scrape time. */
export interface RealtimeGauges {
  /** Authenticated sockets per application. */
  connectionsByApp(): Map<string, number>;
  socketBuffers(): SocketBuffers;
}

/**
 * `/metrics` in Prometheus' text format: every usage counter labelled by application and
 * metric (fed by the meter as it counts, so a scrape costs no store read), this node's
 * connections per application, the output its sockets hold unsent, and the process's default
 * metrics.
 */
export class PrometheusExporter {
  readonly registry = new Registry();

  constructor(meter: UsageMeter, realtime: RealtimeGauges) {
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
        for (const [app, n] of realtime.connectionsByApp()) this.set({ app }, n);
      },
    });
    new Gauge({
      name: 'roomcast_socket_buffered_bytes',
      help:
        'Output accepted for this node\'s authenticated sockets and not yet handed to the kernel: ' +
        'stat="sum" over all of them, stat="max" for the socket holding the most. A socket holding ' +
        'more than ROOMCAST_MAX_SOCKET_BUFFER_BYTES is cut (it may pass it by the frames written to it in one event-loop turn).',
      labelNames: ['stat'],
      registers: [this.registry],
      collect() {
        const { total, max } = realtime.socketBuffers();
        this.set({ stat: 'sum' }, total);
        this.set({ stat: 'max' }, max);
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
