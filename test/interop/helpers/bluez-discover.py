#!/usr/bin/env python3
# bluetoothd's discovery (hci0, LE, duplicates reported) for up to SECS seconds, run in the guest as
#   python3 -c <this file> IDENTITY RPA SECS
# Prints `round N` (flushed) once each discovery has started (StartDiscovery answered: the kernel is
# finding, so a report sent from now on is heard), then ONE JSON line, the last: identitySeen (a report
# set RSSI on IDENTITY's device: the kernel resolved the advertiser's RPA with an IRK it holds, mgmt
# Device Found names the identity), rpaDevice (a device object appeared for RPA, as it does when the RPA
# did not resolve), rounds (discoveries started) and, when seen, the identity's object path, Paired and
# AddressType. Used by own-privacy-bluez (which enables its advertising again on each `round` line) and
# tools/interop/record-bluez-pairing.ts.
#
# The discovery is started afresh every ROUND seconds while nothing is seen. btvirt sends an advertiser's
# report once, right after the kernel's LE Set Scan Enable completes, and Linux 6.1 drops reports that
# come while its discovery is still starting (mgmt_device_found before start_discovery_complete): such a
# round hears nothing until the kernel ends it (10.24 s). Each new start is another chance; a guest btmon
# saw about half of the starts lose that race (see peripheral-pairing-bluez's bluezConnect), 11 of 31 in
# own-privacy-bluez; an advertiser that enables its advertising again after a `round` line is heard.
import dbus, json, sys, time
ROUND = 3.0
bus = dbus.SystemBus()
identity, rpa, secs = sys.argv[1].upper(), sys.argv[2].upper(), float(sys.argv[3])
om = dbus.Interface(bus.get_object('org.bluez', '/'), 'org.freedesktop.DBus.ObjectManager')
adapter = dbus.Interface(bus.get_object('org.bluez', '/org/bluez/hci0'), 'org.bluez.Adapter1')
adapter.SetDiscoveryFilter({'Transport': dbus.String('le'), 'DuplicateData': dbus.Boolean(True)})
out = {'identitySeen': False, 'rpaDevice': False, 'rounds': 0}
end = time.monotonic() + secs
try:
    while time.monotonic() < end and not out['identitySeen']:
        if out['rounds']:
            adapter.StopDiscovery()
        adapter.StartDiscovery()
        out['rounds'] += 1
        print('round %d' % out['rounds'], flush=True)
        round_end = min(end, time.monotonic() + ROUND)
        while time.monotonic() < round_end and not out['identitySeen']:
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
    if out['rounds']:
        adapter.StopDiscovery()
print(json.dumps(out))
