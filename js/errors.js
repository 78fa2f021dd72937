/** Error thrown by every switchboard API, with a stable string `code`. */
export class SwitchboardError extends Error {
  /** @type {'SwitchboardError'} */
  name = 'SwitchboardError';

  /**
   * @param {import('./index.d.ts').SwitchboardErrorCode} code stable identifier, e.g. "TOO_LARGE", "TIMEOUT"
   * @param {string} [message]
   * @param {{cause?: unknown}} [options]
   */
  constructor(code, message, options) {
    super(message || code, options);
    this.code = code;
  }
}
