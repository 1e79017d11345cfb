/**
 * Home Assistant MQTT discovery (the `<discovery prefix>/<component>/<object id>/config` convention):
 * one retained config message per decoded sensor value of a known kind, so a BTHome or Ruuvi sensor
 * appears in Home Assistant with no configuration. The entity reads its value from the device's
 * document (`value_template`) and its availability from the gateway's status topic.
 */
import type { Decoded } from './decoders/types.js';

/** Value name → Home Assistant device class (sensor) and state class; the unit comes from the decoder. */
const SENSOR_CLASSES: Record<string, string> = {
  temperature: 'temperature', humidity: 'humidity', pressure: 'pressure', battery: 'battery', voltage: 'voltage',
  battery_voltage: 'voltage', illuminance: 'illuminance', co2: 'carbon_dioxide', pm2_5: 'pm25', pm10: 'pm10',
  tvoc: 'volatile_organic_compounds', moisture: 'moisture', power: 'power', energy: 'energy', current: 'current',
  dewpoint: 'temperature', gas: 'gas', water: 'water', distance: 'distance', speed: 'speed', duration: 'duration',
  volume: 'volume', volume_storage: 'volume_storage', conductivity: 'conductivity', precipitation: 'precipitation',
};
/** Binary values → Home Assistant binary_sensor device class. */
const BINARY_CLASSES: Record<string, string> = {
  battery_low: 'battery', battery_charging: 'battery_charging', carbon_monoxide: 'carbon_monoxide', cold: 'cold',
  connectivity: 'connectivity', door: 'door', garage_door: 'garage_door', gas_detected: 'gas', heat: 'heat', light: 'light',
  lock: 'lock', moisture_detected: 'moisture', motion: 'motion', moving: 'moving', occupancy: 'occupancy', opening: 'opening',
  plug: 'plug', power_on: 'power', presence: 'presence', problem: 'problem', running: 'running', safety: 'safety', smoke: 'smoke',
  sound: 'sound', tamper: 'tamper', vibration: 'vibration', window: 'window',
};

export interface DiscoveryMessage {
  topic: string;
  payload: string;
}

/** Discovery messages for the values of one decoded payload (value names not in the tables are skipped). */
export function discoveryMessages(opts: {
  discoveryPrefix: string; gateway: string; statusTopic: string; stateTopic: string; address: string; name?: string;
}, d: Decoded): DiscoveryMessage[] {
  const out: DiscoveryMessage[] = [];
  const node = opts.address.replace(/:/g, '').toLowerCase();
  for (const [key, value] of Object.entries(d.values)) {
    const base = key.replace(/_\d+$/, '');
    const binary = typeof value === 'boolean' ? BINARY_CLASSES[base] : undefined;
    const sensor = typeof value === 'number' ? SENSOR_CLASSES[base] : undefined;
    if (!binary && !sensor) continue;
    const component = binary ? 'binary_sensor' : 'sensor';
    const objectId = `blewire_${opts.gateway}_${node}_${d.format}_${key}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const config: Record<string, unknown> = {
      name: key.replace(/_/g, ' '),
      unique_id: `blewire_${node}_${d.format}_${key}`,
      object_id: objectId,
      state_topic: opts.stateTopic,
      value_template: `{{ value_json.decoded.${d.format}.${key} }}`,
      availability_topic: opts.statusTopic,
      payload_available: 'online',
      payload_not_available: 'offline',
      device: {
        identifiers: [`blewire_${node}`],
        connections: [['mac', opts.address.toLowerCase()]],
        name: opts.name ?? `${d.format} ${opts.address}`,
        via_device: `blewire_gateway_${opts.gateway}`,
      },
    };
    if (binary) {
      config['device_class'] = binary;
      config['payload_on'] = 'ON';
      config['payload_off'] = 'OFF';
      config['value_template'] = `{{ 'ON' if value_json.decoded.${d.format}.${key} else 'OFF' }}`;
    } else {
      config['device_class'] = sensor;
      config['state_class'] = 'measurement';
      const unit = d.units[key];
      if (unit) config['unit_of_measurement'] = unit;
    }
    out.push({ topic: `${opts.discoveryPrefix}/${component}/${objectId}/config`, payload: JSON.stringify(config) });
  }
  return out;
}
