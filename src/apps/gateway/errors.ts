/**
 * The gateway's typed errors. Each has a stable `code`; command answers carry `{ code, message }` so a
 * consumer can branch on the code and show the message.
 */
import { BlewireError } from '../../index.js';

export type GatewayErrorCode =
  | 'EGW_CONFIG'          // the configuration is invalid (file, environment or flags)
  | 'EGW_DEPENDENCY'      // an optional dependency (the `mqtt` package) is missing
  | 'EGW_TLS'             // mqtts://: the broker's certificate is not trusted, or the broker refused ours
  | 'EGW_BROKER_REFUSED'  // the broker refused the MQTT connection (CONNACK: bad credentials, not authorised)
  | 'EGW_BAD_JSON'        // a command is not JSON
  | 'EGW_BAD_COMMAND'     // a command has missing or wrongly typed fields
  | 'EGW_TOO_LARGE'       // a command payload is larger than commands.maxPayload
  | 'EGW_UNKNOWN_OP'      // a command names no known operation
  | 'EGW_UNKNOWN_DEVICE'  // a command names a device the gateway has not heard and is not connected to
  | 'EGW_NOT_CONNECTED'   // the device is not connected (connect first)
  | 'EGW_BUSY'            // too many commands or connections at once
  | 'EGW_ADAPTER_DOWN'    // the adapter is being (re)opened
  | 'EGW_STOPPED';        // the gateway is stopping

export class GatewayError extends BlewireError {
  override readonly code: GatewayErrorCode;
  constructor(code: GatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
