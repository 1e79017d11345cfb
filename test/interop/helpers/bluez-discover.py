#!/usr/bin/env python3
# bluetoothd's discovery (hci0, LE, duplicates reported) for up to SECS seconds, run in the guest as
#   python3 -c <this file> IDENTITY RPA SECS
# Prints ONE JSON line: identitySeen (a report set RSSI on IDENTITY's device: the kernel resolved the
# advertiser's RPA with an IRK it holds, mgmt Device Found names the identity), rpaDevice (a device
# object appeared for RPA, as it does when the RPA did not resolve) and, when seen, the identity's
# object path, Paired and AddressType. Used by own-privacy-bluez and tools/interop/record-bluez-pairing.ts.
import dbus, json, sys, time
bus = dbus.SystemBus()
identity, rpa, secs = sys.argv[1].upper(), sys.argv[2].upper(), float(sys.argv[3])
om = dbus.Interface(bus.get_object('org.bluez', '/'), 'org.freedesktop.DBus.ObjectManager')
adapter = dbus.Interface(bus.get_object('org.bluez', '/org/bluez/hci0'), 'org.bluez.Adapter1')
adapter.SetDiscoveryFilter({'Transport': dbus.String('le'), 'DuplicateData': dbus.Boolean(True)})
adapter.StartDiscovery()
out = {'identitySeen': False, 'rpaDevice': False}
end = time.monotonic() + secs
try:
    while time.monotonic() < end and not out['identitySeen']:
        for path, ifaces in om.GetManagedObjects().items():
            d = ifaces.get('org.bluez.Device1')
            if not d:
                continue
            a = str(d.get('Address', '')).upper()
            if a == rpa:
                out['rpaDevice'] = True
            if a == identity and 'RSSI' in d:
                out['identitySeen'] = True
                out['path'] = str(path)
                out['paired'] = bool(d.get('Paired', False))
                out['addressType'] = str(d.get('AddressType', ''))
        time.sleep(0.2)
finally:
    adapter.StopDiscovery()
print(json.dumps(out))
