/**
 * blewire's MQTT gateway as a library: `new Gateway(resolveConfig({ … })).start()`, the decoders,
 * and the merged multi-gateway view. Needs the optional `mqtt` package (MQTT.js 5).
 */
export { Gateway, type GatewayDeps, type GatewayStats } from './gateway.js';
export { resolveConfig, configFromEnv, topicsOf, DEFAULTS, type GatewayConfig, type ResolvedConfig, type PartialConfig, type MqttSettings } from './config.js';
export { GatewayError, type GatewayErrorCode } from './errors.js';
export { GatewayMerger, type MergedDevice, type Sighting } from './merge.js';
export { DECODERS, decodeAll, type Decoded, type DecodeContext, type SensorDecoder, type SensorValue } from './decoders/index.js';
export { buildDocument, type DeviceDocument } from './document.js';
export { parseCommand, type Command, type Answer } from './commands.js';
export { loadMqtt, MqttLink, MAX_INFLIGHT } from './mqtt.js';
export { BoundedQueue } from './buffer.js';
export { RateLimiter, type RateLimits } from './rate.js';
export { jsonLogger, type Logger, type LogLevel } from './log.js';
