/** Where every layer logs. The gateway routes it to Orthanc's log; tests and the CLI to the console. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const consoleLogger: Logger = {
  info: (message) => console.log(message),
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
};

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
