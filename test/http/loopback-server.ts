// A tiny scripted HTTP server on 127.0.0.1 for the cases the simulator does not model: each request is recorded
// (with its arrival time on the real clock) and answered by the test's handler.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Lower-case names, raw values. */
  headers: Record<string, string>;
  /** Date.now() when the request arrived. */
  at: number;
}

export interface LoopbackServer {
  url: string;
  requests: SeenRequest[];
  /** TCP connections accepted so far (also counts connections that never sent a request). */
  connections: number;
  stop(): Promise<void>;
}

export async function startLoopbackServer(
  handler: (req: IncomingMessage, res: ServerResponse, seen: SeenRequest, index: number) => void | Promise<void>,
): Promise<LoopbackServer> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers,
      at: Date.now(),
    };
    requests.push(seen);
    Promise.resolve(handler(req, res, seen, requests.length - 1)).catch(() => res.destroy());
  });
  const state = { connections: 0 };
  server.on('connection', (socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    get connections() {
      return state.connections;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A credential for loopback tests: the token value does not matter to a scripted server. */
export const anyToken = {
  async getToken() {
    return { token: 'test-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  },
};
