import { once } from 'node:events';
import http from 'node:http';
import type { Socket } from 'node:net';

/** What the proxy does to the requests it picks (see `every`). */
export type Fault =
  | { readonly kind: 'none' }
  /** Wait this long before forwarding. */
  | { readonly kind: 'latency'; readonly ms: number }
  /** Cut the connection with a TCP reset halfway through the body (request body when there is one, else response). */
  | { readonly kind: 'reset-mid-body' }
  /** Answer an S3-style error without forwarding: 500 InternalError, or 503 SlowDown. */
  | { readonly kind: 'status'; readonly status: 500 | 503 }
  /** Pass half the body (request body when there is one, else response), then nothing more. */
  | { readonly kind: 'stall' }
  /** Stop listening: connections are refused (until the fault changes). */
  | { readonly kind: 'refuse' };

export interface FaultProxyStats {
  requests: number;
  faulted: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT, to use as the client's endpoint. */
  readonly url: string;
  readonly port: number;
  readonly stats: FaultProxyStats;
  /** Apply `fault` to every `every`-th request from now on (1 = all of them). */
  setFault(fault: Fault, every?: number): Promise<void>;
  stop(): Promise<void>;
}

const S3_ERRORS = {
  500: { code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
  503: { code: 'SlowDown', message: 'Please reduce your request rate.' },
} as const;

/**
 * A loopback HTTP proxy in front of a test server that injects faults between a client (the
 * gateway's SDK) and the server: latency, resets in the middle of a body, 500 and 503 SlowDown
 * answers, stalled bodies and refused connections. Faults apply to every n-th request, so that
 * the client's retries can succeed.
 */
export async function startFaultProxy(target: string, port = 0): Promise<FaultProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const stats: FaultProxyStats = { requests: 0, faulted: 0 };
  let fault: Fault = { kind: 'none' };
  let every = 1;
  const sockets = new Set<Socket>();
  const stalled = new Set<http.ServerResponse>();

  const server = http.createServer((request, response) => {
    stats.requests += 1;
    const picked = fault.kind !== 'none' && fault.kind !== 'refuse' && stats.requests % every === 0;
    const current: Fault = picked ? fault : { kind: 'none' };
    if (picked) stats.faulted += 1;
    void handle(request, response, current);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 30_000;

  async function handle(request: http.IncomingMessage, response: http.ServerResponse, current: Fault) {
    if (current.kind === 'status') {
      const { code, message } = S3_ERRORS[current.status];
      request.resume();
      response.writeHead(current.status, { 'Content-Type': 'application/xml', Connection: 'close' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message>` +
          `<RequestId>fault-proxy</RequestId></Error>`,
      );
      return;
    }
    if (current.kind === 'latency') await new Promise((resolve) => setTimeout(resolve, current.ms));
    const length = Number(request.headers['content-length'] ?? 0);
    const cutRequest = (current.kind === 'reset-mid-body' || current.kind === 'stall') && length > 1;
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: request.headers,
        agent,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        const total = Number(answer.headers['content-length'] ?? 0);
        const cutResponse = current.kind !== 'none' && current.kind !== 'latency' && !cutRequest;
        if (!cutResponse || total < 2) {
          answer.pipe(response);
          return;
        }
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= total / 2) return;
          const part = chunk.subarray(0, Math.max(0, Math.ceil(total / 2) - sent));
          sent += part.length;
          response.write(part);
          if (sent < total / 2) return;
          abandoned = true;
          answer.destroy();
          if (current.kind === 'reset-mid-body') response.socket?.resetAndDestroy();
          else stalled.add(response); // nothing more, until the client gives up
        });
      },
    );
    let abandoned = false; // the fault cut the forward request on purpose
    forward.on('error', () => {
      if (!abandoned) response.socket?.resetAndDestroy();
    });
    if (!cutRequest) {
      request.pipe(forward);
      return;
    }
    let received = 0;
    request.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= length / 2) {
        abandoned = true;
        forward.destroy();
        if (current.kind === 'stall') {
          request.pause(); // nothing more reaches the server, nothing comes back
          stalled.add(response);
        } else {
          request.socket.resetAndDestroy();
        }
      } else {
        forward.write(chunk);
      }
    });
  }

  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no port');
  const boundPort = address.port;
  let listening = true;

  const dropConnections = () => {
    for (const socket of sockets) socket.destroy();
    for (const response of stalled) response.destroy();
    stalled.clear();
  };

  return {
    url: `http://127.0.0.1:${boundPort}`,
    port: boundPort,
    stats,
    async setFault(next: Fault, n = 1) {
      fault = next;
      every = Math.max(1, n);
      if (next.kind === 'refuse' && listening) {
        listening = false;
        server.close();
        dropConnections();
      } else if (next.kind !== 'refuse' && !listening) {
        server.listen(boundPort, '127.0.0.1');
        await once(server, 'listening');
        listening = true;
      }
      if (next.kind === 'none') {
        for (const response of stalled) response.destroy();
        stalled.clear();
      }
    },
    async stop() {
      dropConnections();
      agent.destroy();
      if (listening) await new Promise((resolve) => server.close(resolve));
    },
  };
}
