/**
 * Names of the commonly used Bluetooth SIG assigned 16-bit UUIDs (Assigned Numbers, section 3:
 * "16-bit UUIDs"; GATT declarations and descriptors: Core Vol 3, Part G, 3.1–3.3), for describe(),
 * `blewire explore` and name lookups. The spelling follows Web Bluetooth's GATT name registry
 * (lower snake case, "gap."/"gatt." prefixes for the core profile's own characteristics), so
 * `uuid('heart_rate')` means what BluetoothUUID.getService('heart_rate') means. A prefixed name is
 * also found without its prefix ("device_name" = "gap.device_name").
 */

export type UuidCategory = 'service' | 'characteristic' | 'descriptor' | 'declaration';

/** GATT attribute type declarations (Vol 3, Part G, 3.1–3.3). */
export const DECLARATION_NAMES: ReadonlyMap<number, string> = new Map([
  [0x2800, 'gatt.primary_service'],
  [0x2801, 'gatt.secondary_service'],
  [0x2802, 'gatt.include'],
  [0x2803, 'gatt.characteristic'],
]);

/** GATT services (Assigned Numbers 3.4 "GATT Service"). */
export const SERVICE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x1800, 'generic_access'],
  [0x1801, 'generic_attribute'],
  [0x1802, 'immediate_alert'],
  [0x1803, 'link_loss'],
  [0x1804, 'tx_power'],
  [0x1805, 'current_time'],
  [0x1806, 'reference_time_update'],
  [0x1807, 'next_dst_change'],
  [0x1808, 'glucose'],
  [0x1809, 'health_thermometer'],
  [0x180a, 'device_information'],
  [0x180d, 'heart_rate'],
  [0x180e, 'phone_alert_status'],
  [0x180f, 'battery_service'],
  [0x1810, 'blood_pressure'],
  [0x1811, 'alert_notification'],
  [0x1812, 'human_interface_device'],
  [0x1813, 'scan_parameters'],
  [0x1814, 'running_speed_and_cadence'],
  [0x1815, 'automation_io'],
  [0x1816, 'cycling_speed_and_cadence'],
  [0x1818, 'cycling_power'],
  [0x1819, 'location_and_navigation'],
  [0x181a, 'environmental_sensing'],
  [0x181b, 'body_composition'],
  [0x181c, 'user_data'],
  [0x181d, 'weight_scale'],
  [0x181e, 'bond_management'],
  [0x181f, 'continuous_glucose_monitoring'],
  [0x1820, 'internet_protocol_support'],
  [0x1821, 'indoor_positioning'],
  [0x1822, 'pulse_oximeter'],
  [0x1823, 'http_proxy'],
  [0x1824, 'transport_discovery'],
  [0x1825, 'object_transfer'],
  [0x1826, 'fitness_machine'],
  [0x1827, 'mesh_provisioning'],
  [0x1828, 'mesh_proxy'],
  [0x1829, 'reconnection_configuration'],
  [0x183a, 'insulin_delivery'],
  [0x183b, 'binary_sensor'],
  [0x183c, 'emergency_configuration'],
  [0x183e, 'physical_activity_monitor'],
  [0x1843, 'audio_input_control'],
  [0x1844, 'volume_control'],
  [0x1845, 'volume_offset_control'],
  [0x1846, 'coordinated_set_identification'],
  [0x1847, 'device_time'],
  [0x1848, 'media_control'],
  [0x1849, 'generic_media_control'],
  [0x184a, 'constant_tone_extension'],
  [0x184b, 'telephone_bearer'],
  [0x184c, 'generic_telephone_bearer'],
  [0x184d, 'microphone_control'],
  [0x184e, 'audio_stream_control'],
  [0x184f, 'broadcast_audio_scan'],
  [0x1850, 'published_audio_capabilities'],
  [0x1851, 'basic_audio_announcement'],
  [0x1852, 'broadcast_audio_announcement'],
  [0x1853, 'common_audio'],
  [0x1854, 'hearing_access'],
  [0x1855, 'telephony_and_media_audio'],
  [0x1856, 'public_broadcast_announcement'],
  [0x1857, 'electronic_shelf_label'],
]);

/** GATT characteristics (Assigned Numbers 3.8 "Characteristic UUIDs"). */
export const CHARACTERISTIC_NAMES: ReadonlyMap<number, string> = new Map([
  [0x2a00, 'gap.device_name'],
  [0x2a01, 'gap.appearance'],
  [0x2a02, 'gap.peripheral_privacy_flag'],
  [0x2a03, 'gap.reconnection_address'],
  [0x2a04, 'gap.peripheral_preferred_connection_parameters'],
  [0x2a05, 'gatt.service_changed'],
  [0x2a06, 'alert_level'],
  [0x2a07, 'tx_power_level'],
  [0x2a08, 'date_time'],
  [0x2a09, 'day_of_week'],
  [0x2a0a, 'day_date_time'],
  [0x2a0c, 'exact_time_256'],
  [0x2a0d, 'dst_offset'],
  [0x2a0e, 'time_zone'],
  [0x2a0f, 'local_time_information'],
  [0x2a11, 'time_with_dst'],
  [0x2a12, 'time_accuracy'],
  [0x2a13, 'time_source'],
  [0x2a14, 'reference_time_information'],
  [0x2a16, 'time_update_control_point'],
  [0x2a17, 'time_update_state'],
  [0x2a18, 'glucose_measurement'],
  [0x2a19, 'battery_level'],
  [0x2a1c, 'temperature_measurement'],
  [0x2a1d, 'temperature_type'],
  [0x2a1e, 'intermediate_temperature'],
  [0x2a21, 'measurement_interval'],
  [0x2a22, 'boot_keyboard_input_report'],
  [0x2a23, 'system_id'],
  [0x2a24, 'model_number_string'],
  [0x2a25, 'serial_number_string'],
  [0x2a26, 'firmware_revision_string'],
  [0x2a27, 'hardware_revision_string'],
  [0x2a28, 'software_revision_string'],
  [0x2a29, 'manufacturer_name_string'],
  [0x2a2a, 'ieee_11073-20601_regulatory_certification_data_list'],
  [0x2a2b, 'current_time'],
  [0x2a31, 'scan_refresh'],
  [0x2a32, 'boot_keyboard_output_report'],
  [0x2a33, 'boot_mouse_input_report'],
  [0x2a34, 'glucose_measurement_context'],
  [0x2a35, 'blood_pressure_measurement'],
  [0x2a36, 'intermediate_cuff_pressure'],
  [0x2a37, 'heart_rate_measurement'],
  [0x2a38, 'body_sensor_location'],
  [0x2a39, 'heart_rate_control_point'],
  [0x2a3f, 'alert_status'],
  [0x2a40, 'ringer_control_point'],
  [0x2a41, 'ringer_setting'],
  [0x2a42, 'alert_category_id_bit_mask'],
  [0x2a43, 'alert_category_id'],
  [0x2a44, 'alert_notification_control_point'],
  [0x2a45, 'unread_alert_status'],
  [0x2a46, 'new_alert'],
  [0x2a47, 'supported_new_alert_category'],
  [0x2a48, 'supported_unread_alert_category'],
  [0x2a49, 'blood_pressure_feature'],
  [0x2a4a, 'hid_information'],
  [0x2a4b, 'report_map'],
  [0x2a4c, 'hid_control_point'],
  [0x2a4d, 'report'],
  [0x2a4e, 'protocol_mode'],
  [0x2a4f, 'scan_interval_window'],
  [0x2a50, 'pnp_id'],
  [0x2a51, 'glucose_feature'],
  [0x2a52, 'record_access_control_point'],
  [0x2a53, 'rsc_measurement'],
  [0x2a54, 'rsc_feature'],
  [0x2a55, 'sc_control_point'],
  [0x2a5b, 'csc_measurement'],
  [0x2a5c, 'csc_feature'],
  [0x2a5d, 'sensor_location'],
  [0x2a5e, 'plx_spot_check_measurement'],
  [0x2a5f, 'plx_continuous_measurement'],
  [0x2a60, 'plx_features'],
  [0x2a63, 'cycling_power_measurement'],
  [0x2a64, 'cycling_power_vector'],
  [0x2a65, 'cycling_power_feature'],
  [0x2a66, 'cycling_power_control_point'],
  [0x2a67, 'location_and_speed'],
  [0x2a68, 'navigation'],
  [0x2a69, 'position_quality'],
  [0x2a6a, 'ln_feature'],
  [0x2a6b, 'ln_control_point'],
  [0x2a6c, 'elevation'],
  [0x2a6d, 'pressure'],
  [0x2a6e, 'temperature'],
  [0x2a6f, 'humidity'],
  [0x2a70, 'true_wind_speed'],
  [0x2a71, 'true_wind_direction'],
  [0x2a72, 'apparent_wind_speed'],
  [0x2a73, 'apparent_wind_direction'],
  [0x2a74, 'gust_factor'],
  [0x2a75, 'pollen_concentration'],
  [0x2a76, 'uv_index'],
  [0x2a77, 'irradiance'],
  [0x2a78, 'rainfall'],
  [0x2a79, 'wind_chill'],
  [0x2a7a, 'heat_index'],
  [0x2a7b, 'dew_point'],
  [0x2a7d, 'descriptor_value_changed'],
  [0x2a98, 'weight'],
  [0x2a9c, 'body_composition_measurement'],
  [0x2a9d, 'weight_measurement'],
  [0x2a9e, 'weight_scale_feature'],
  [0x2a9f, 'user_control_point'],
  [0x2aa2, 'language'],
  [0x2aa3, 'barometric_pressure_trend'],
  [0x2aa4, 'bond_management_control_point'],
  [0x2aa5, 'bond_management_feature'],
  [0x2aa6, 'gap.central_address_resolution'],
  [0x2aa7, 'cgm_measurement'],
  [0x2aa8, 'cgm_feature'],
  [0x2aa9, 'cgm_status'],
  [0x2aaa, 'cgm_session_start_time'],
  [0x2aab, 'cgm_session_run_time'],
  [0x2aac, 'cgm_specific_ops_control_point'],
  [0x2ab6, 'uri'],
  [0x2ab7, 'http_headers'],
  [0x2ab8, 'http_status_code'],
  [0x2ab9, 'http_entity_body'],
  [0x2aba, 'http_control_point'],
  [0x2abb, 'https_security'],
  [0x2abc, 'tds_control_point'],
  [0x2abd, 'ots_feature'],
  [0x2abe, 'object_name'],
  [0x2abf, 'object_type'],
  [0x2ac0, 'object_size'],
  [0x2ac1, 'object_first_created'],
  [0x2ac2, 'object_last_modified'],
  [0x2ac3, 'object_id'],
  [0x2ac4, 'object_properties'],
  [0x2ac5, 'object_action_control_point'],
  [0x2ac6, 'object_list_control_point'],
  [0x2ac7, 'object_list_filter'],
  [0x2ac8, 'object_changed'],
  [0x2ac9, 'resolvable_private_address_only'],
  [0x2acc, 'fitness_machine_feature'],
  [0x2acd, 'treadmill_data'],
  [0x2ace, 'cross_trainer_data'],
  [0x2acf, 'step_climber_data'],
  [0x2ad0, 'stair_climber_data'],
  [0x2ad1, 'rower_data'],
  [0x2ad2, 'indoor_bike_data'],
  [0x2ad3, 'training_status'],
  [0x2ad4, 'supported_speed_range'],
  [0x2ad5, 'supported_inclination_range'],
  [0x2ad6, 'supported_resistance_level_range'],
  [0x2ad7, 'supported_heart_rate_range'],
  [0x2ad8, 'supported_power_range'],
  [0x2ad9, 'fitness_machine_control_point'],
  [0x2ada, 'fitness_machine_status'],
  [0x2adb, 'mesh_provisioning_data_in'],
  [0x2adc, 'mesh_provisioning_data_out'],
  [0x2add, 'mesh_proxy_data_in'],
  [0x2ade, 'mesh_proxy_data_out'],
  [0x2b29, 'gatt.client_supported_features'],
  [0x2b2a, 'gatt.database_hash'],
  [0x2b3a, 'gatt.server_supported_features'],
]);

/** GATT descriptors (Assigned Numbers 3.7 "Descriptors"; Vol 3, Part G, 3.3.3). */
export const DESCRIPTOR_NAMES: ReadonlyMap<number, string> = new Map([
  [0x2900, 'gatt.characteristic_extended_properties'],
  [0x2901, 'gatt.characteristic_user_description'],
  [0x2902, 'gatt.client_characteristic_configuration'],
  [0x2903, 'gatt.server_characteristic_configuration'],
  [0x2904, 'gatt.characteristic_presentation_format'],
  [0x2905, 'gatt.characteristic_aggregate_format'],
  [0x2906, 'valid_range'],
  [0x2907, 'external_report_reference'],
  [0x2908, 'report_reference'],
  [0x2909, 'number_of_digitals'],
  [0x290a, 'value_trigger_setting'],
  [0x290b, 'es_configuration'],
  [0x290c, 'es_measurement'],
  [0x290d, 'es_trigger_setting'],
  [0x290e, 'time_trigger_setting'],
  [0x290f, 'complete_br_edr_transport_block_data'],
]);

const CATEGORIES: ReadonlyArray<[UuidCategory, ReadonlyMap<number, string>]> = [
  ['service', SERVICE_NAMES],
  ['characteristic', CHARACTERISTIC_NAMES],
  ['descriptor', DESCRIPTOR_NAMES],
  ['declaration', DECLARATION_NAMES],
];

/** Every named 16-bit UUID → its name. */
export const UUID_NAMES: ReadonlyMap<number, string> = new Map(CATEGORIES.flatMap(([, m]) => [...m]));

const byName = new Map<UuidCategory, Map<string, number>>();
for (const [category, names] of CATEGORIES) {
  const m = new Map<string, number>();
  for (const [n, name] of names) m.set(name, n);
  // Unprefixed aliases ("device_name" for "gap.device_name") unless that would shadow a real name.
  for (const [n, name] of names) {
    const dot = name.indexOf('.');
    if (dot > 0 && !m.has(name.slice(dot + 1))) m.set(name.slice(dot + 1), n);
  }
  byName.set(category, m);
}

/**
 * The 16-bit UUID of a name, searching one category or all of them (services first, then
 * characteristics, descriptors, declarations); undefined when unknown. Names are lower case.
 */
export function uuidByName(name: string, category?: UuidCategory): number | undefined {
  if (category) return byName.get(category)!.get(name);
  for (const [c] of CATEGORIES) {
    const n = byName.get(c)!.get(name);
    if (n !== undefined) return n;
  }
  return undefined;
}

/** The category of a named 16-bit UUID (for explore's tree labels), or undefined. */
export function uuidCategory(n: number): UuidCategory | undefined {
  for (const [c, m] of CATEGORIES) if (m.has(n)) return c;
  return undefined;
}
