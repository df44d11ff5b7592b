import { connect, type Socket } from 'node:net';
import {
  decodeResponseHeader,
  encodeRequestHeader,
  Operation,
  RESPONSE_HEADER_SIZE,
  Status,
  type ResponseHeader,
} from './protocol.js';
import { SocketReader } from './socket-reader.js';

/** A gateway answer that is not Ok. */
export class GatewayStatusError extends Error {
  constructor(
    readonly status: Status,
    message: string,
  ) {
    super(`${Status[status]}: ${message}`);
  }
}

/**
 * Speaks the shim's side of the protocol from TypeScript: for tests and tools, one request at a
 * time on one connection (the native shim is the production client).
 */
export class ShimClient {
  private constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
  ) {}

  static connect(socketPath: string): Promise<ShimClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(socketPath);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new ShimClient(socket, new SocketReader(socket)));
      });
    });
  }

  /** Raw access for protocol tests. */
  get rawSocket(): Socket {
    return this.socket;
  }

  close(): void {
    this.socket.destroy();
  }

  private send(
    operation: Operation,
    uuid: string,
    type: number,
    offset: number,
    size: number,
    body?: Buffer,
  ): void {
    const uuidBytes = Buffer.from(uuid, 'latin1');
    const header = encodeRequestHeader({
      operation,
      uuidLength: uuidBytes.length,
      contentType: type,
      offset,
      size,
    });
    this.socket.write(body ? Buffer.concat([header, uuidBytes, body]) : Buffer.concat([header, uuidBytes]));
  }

  async readResponse(): Promise<ResponseHeader & { message: string }> {
    const bytes = await this.reader.readExactly(RESPONSE_HEADER_SIZE);
    if (bytes === null) throw new Error('connection closed by the gateway');
    const header = decodeResponseHeader(bytes);
    const message =
      header.messageLength > 0 ? await this.reader.readExactly(header.messageLength) : Buffer.alloc(0);
    if (message === null) throw new Error('connection closed by the gateway');
    return { ...header, message: message.toString('utf8') };
  }

  private async expectOk(): Promise<ResponseHeader> {
    const response = await this.readResponse();
    if (response.status !== Status.Ok) throw new GatewayStatusError(response.status, response.message);
    return response;
  }

  async create(uuid: string, type: number, body: Buffer): Promise<void> {
    this.send(Operation.Create, uuid, type, 0, body.length, body);
    await this.expectOk();
  }

  async remove(uuid: string, type: number): Promise<void> {
    this.send(Operation.Remove, uuid, type, 0, 0);
    await this.expectOk();
  }

  async readWhole(uuid: string, type: number): Promise<Buffer> {
    this.send(Operation.ReadWhole, uuid, type, 0, 0);
    return this.readBody();
  }

  async readRange(uuid: string, type: number, offset: number, length: number): Promise<Buffer> {
    this.send(Operation.ReadRange, uuid, type, offset, length);
    return this.readBody();
  }

  /** Body then trailer; throws with the trailer's status when the gateway refuses the bytes. */
  private async readBody(): Promise<Buffer> {
    const head = await this.expectOk();
    const body = head.size > 0 ? await this.reader.readExactly(head.size) : Buffer.alloc(0);
    if (body === null) throw new Error('connection closed by the gateway');
    await this.expectOk();
    return body;
  }
}
