#!/usr/bin/env python3
# BlueZ (bluetoothd, hci0) as the CENTRAL of blewire's GATT server, through BlueZ's own D-Bus API
# (org.bluez Adapter1 / Device1 / GattService1 / GattCharacteristic1, doc/*-api.txt of BlueZ 5.66).
# Runs in the guest next to guest-gatt-server-main.ts: discovers the peripheral's advertisement,
# connects, lets bluetoothd discover the database by itself (ServicesResolved), then reads, writes
# (with and without response), reads a long value and subscribes to notifications and indications.
# Prints ONE JSON line: what BlueZ saw. Every step has a deadline; a failure is reported in "error".
#
# Usage: bluez-central.py <peripheral address> <service uuid>
import json
import sys
import time

import dbus

BLUEZ = 'org.bluez'
OM = 'org.freedesktop.DBus.ObjectManager'
PROPS = 'org.freedesktop.DBus.Properties'

address = sys.argv[1].upper()
service_uuid = sys.argv[2].lower()
out = {'steps': [], 'services': [], 'characteristics': {}}
t0 = time.monotonic()


def step(name):
    out['steps'].append([name, round((time.monotonic() - t0) * 1000)])


def objects(bus):
    return dbus.Interface(bus.get_object(BLUEZ, '/'), OM).GetManagedObjects()


def wait_for(what, fn, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise RuntimeError('timed out waiting for ' + what)


def main():
    bus = dbus.SystemBus()
    adapter_path = '/org/bluez/hci0'
    adapter = dbus.Interface(bus.get_object(BLUEZ, adapter_path), 'org.bluez.Adapter1')
    adapter.SetDiscoveryFilter({'Transport': dbus.String('le'), 'DuplicateData': dbus.Boolean(False)})
    adapter.StartDiscovery()
    step('discovery started')

    def find_device():
        for path, ifaces in objects(bus).items():
            d = ifaces.get('org.bluez.Device1')
            if d and str(d.get('Address', '')).upper() == address and path.startswith(adapter_path + '/'):
                return path
        return None

    dev_path = wait_for('the advertisement of ' + address, find_device, 60)
    props = objects(bus)[dev_path]['org.bluez.Device1']
    out['advertised'] = {'name': str(props.get('Name', '')), 'uuids': [str(u) for u in props.get('UUIDs', [])],
                         'addressType': str(props.get('AddressType', ''))}
    step('found')
    adapter.StopDiscovery()
    device = dbus.Interface(bus.get_object(BLUEZ, dev_path), 'org.bluez.Device1')
    device.Connect(timeout=60)
    step('connected')
    dprops = dbus.Interface(bus.get_object(BLUEZ, dev_path), PROPS)
    wait_for('ServicesResolved', lambda: bool(dprops.Get('org.bluez.Device1', 'ServicesResolved')), 60)
    step('services resolved')

    objs = objects(bus)
    svc_path = None
    for path, ifaces in objs.items():
        s = ifaces.get('org.bluez.GattService1')
        if s and path.startswith(dev_path + '/'):
            out['services'].append(str(s['UUID']))
            if str(s['UUID']).lower() == service_uuid:
                svc_path = path
    if not svc_path:
        raise RuntimeError('service %s not among %s' % (service_uuid, out['services']))
    chars = {}
    for path, ifaces in objs.items():
        c = ifaces.get('org.bluez.GattCharacteristic1')
        if c and path.startswith(svc_path + '/'):
            chars[str(c['UUID']).lower()] = path
            out['characteristics'][str(c['UUID']).lower()] = [str(f) for f in c['Flags']]

    def char(n):
        return dbus.Interface(bus.get_object(BLUEZ, chars[service_uuid.replace('b1e0f000', 'b1e0f00%d' % n)]),
                             'org.bluez.GattCharacteristic1')

    out['read'] = bytes(char(1).ReadValue({})).decode('utf-8')
    step('read')
    char(2).WriteValue(dbus.Array(b'written by bluez', signature='y'), {'type': dbus.String('request')})
    step('write request')
    char(2).WriteValue(dbus.Array(b'command from bluez', signature='y'), {'type': dbus.String('command')})
    step('write command')
    # Longer than ATT_MTU - 3 (the peripheral offers ATT_MTU 23): bluetoothd writes it with
    # Prepare Write / Execute Write (a long write, Vol 3, Part G, 4.9.4).
    long_value = bytes(range(0x30, 0x30 + 70)) * 3
    char(2).WriteValue(dbus.Array(long_value, signature='y'), {'type': dbus.String('request')})
    out['longWrite'] = long_value.decode('latin-1')
    step('long write')
    out['longRead'] = bytes(char(4).ReadValue({})).decode('utf-8')
    step('long read')
    c3 = char(3)
    c3.StartNotify()
    step('notify started')
    cprops = dbus.Interface(bus.get_object(BLUEZ, chars[service_uuid.replace('b1e0f000', 'b1e0f003')]), PROPS)
    value = wait_for('a notification', lambda: list(bytes(cprops.Get('org.bluez.GattCharacteristic1', 'Value'))) == [0x2a, 1, 2]
                     and [0x2a, 1, 2], 30)
    out['notified'] = value
    step('notified')
    c3.StopNotify()
    # Indications: StartNotify on an indicate-only characteristic writes 0x0002 to its CCCD; bluetoothd
    # confirms each indication (Handle Value Confirmation) and updates Value.
    c5 = char(5)
    c5.StartNotify()
    step('indicate started')
    c5props = dbus.Interface(bus.get_object(BLUEZ, chars[service_uuid.replace('b1e0f000', 'b1e0f005')]), PROPS)
    out['indicated'] = wait_for('an indication', lambda: list(bytes(c5props.Get('org.bluez.GattCharacteristic1', 'Value'))) == [0x1d, 0x0e]
                                and [0x1d, 0x0e], 30)
    step('indicated')
    c5.StopNotify()
    device.Disconnect()
    step('disconnected')


try:
    main()
except Exception as e:  # report every failure as data for the host
    out['error'] = '%s: %s' % (type(e).__name__, e)
print(json.dumps(out))
sys.stdout.flush()
