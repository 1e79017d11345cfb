#!/usr/bin/env python3
# One operation of BlueZ (bluetoothd, hci0) as the CENTRAL of a blewire peripheral, through BlueZ's own
# D-Bus API (org.bluez Adapter1 / Device1 / GattCharacteristic1, doc/*-api.txt of BlueZ 5.66). The host
# runs it over the guest's control line (python3 -c <this file> ...), one operation per call, while
# bluetoothd keeps its state (device objects, bonds) between calls.
#
#   connect ADDR                 discover ADDR if bluetoothd does not know it, Connect, wait ServicesResolved
#   read ADDR CHAR_UUID          ReadValue (bluetoothd raises the link's security on 0x05 / 0x0F by itself)
#   write ADDR CHAR_UUID HEX     WriteValue as a Write Request
#   write-command ADDR CHAR_UUID HEX
#                                WriteValue type "command": a Write Command, or a Signed Write Command when
#                                the characteristic has authenticated-signed-writes and the link is
#                                unencrypted (src/shared/gatt-client.c bt_gatt_client_write_without_response)
#   notify ADDR CHAR_UUID N      StartNotify, wait until N notifications changed Value (no StopNotify: when
#                                this process leaves the bus, bluetoothd drops its notify session and writes
#                                the CCCD back to 0000 by itself, as captures/bluez-central-gatt shows)
#   listen ADDR CHAR_UUID SECS   no StartNotify: wait up to SECS for a notification to change Value
#   acquire-notify ADDR CHAR_UUID N
#                                AcquireNotify (bluetoothd writes the CCCD and hands over a socket on which
#                                every notification is one packet, none merged or missed), read N of them,
#                                close the socket (bluetoothd then writes the CCCD back to 0000)
#   info ADDR                    what bluetoothd holds for the device: Name, AddressType, UUIDs, Connected
#   disconnect ADDR              Device1.Disconnect, wait Connected false
#
# Prints ONE JSON line: {"ok": true, ...} or {"error": "..."}; every wait has a deadline.
import json
import os
import select
import sys
import time

import dbus

BLUEZ = 'org.bluez'
OM = 'org.freedesktop.DBus.ObjectManager'
PROPS = 'org.freedesktop.DBus.Properties'
ADAPTER = '/org/bluez/hci0'

args = sys.argv[1:]
op, address = args[0], args[1].upper()
out = {'op': op}
t0 = time.monotonic()
bus = dbus.SystemBus()


def ms():
    return round((time.monotonic() - t0) * 1000)


def objects():
    return dbus.Interface(bus.get_object(BLUEZ, '/'), OM).GetManagedObjects()


def wait_for_until(fn, deadline):
    """fn()'s first truthy value before the monotonic deadline, else None."""
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return None


def wait_for(what, fn, timeout):
    v = wait_for_until(fn, time.monotonic() + timeout)
    if v:
        return v
    raise RuntimeError('timed out waiting for ' + what)


def device_path():
    for path, ifaces in objects().items():
        d = ifaces.get('org.bluez.Device1')
        if d and str(d.get('Address', '')).upper() == address and path.startswith(ADAPTER + '/'):
            return path
    return None


def dev_prop(path, name):
    return dbus.Interface(bus.get_object(BLUEZ, path), PROPS).Get('org.bluez.Device1', name)


def char_path(dev, uuid):
    def find():
        for path, ifaces in objects().items():
            c = ifaces.get('org.bluez.GattCharacteristic1')
            if c and path.startswith(dev + '/') and str(c['UUID']).lower() == uuid.lower():
                return path
        return None
    return wait_for('characteristic ' + uuid, find, 30)


def connect():
    dev = device_path()
    if not dev:
        adapter = dbus.Interface(bus.get_object(BLUEZ, ADAPTER), 'org.bluez.Adapter1')
        adapter.SetDiscoveryFilter({'Transport': dbus.String('le'), 'DuplicateData': dbus.Boolean(False)})
        # Started afresh every 3 s while the device is not found: btvirt sends its report once, right
        # after the kernel's LE Set Scan Enable, and Linux 6.1 drops reports that come while its
        # discovery is still starting; such a round stays deaf until the kernel ends it (10.24 s).
        rounds = 0
        end = time.monotonic() + 60
        try:
            while True:
                if rounds:
                    adapter.StopDiscovery()
                adapter.StartDiscovery()
                rounds += 1
                dev = wait_for_until(device_path, min(end, time.monotonic() + 3))
                if dev or time.monotonic() >= end:
                    break
        finally:
            if rounds:
                adapter.StopDiscovery()
        if not dev:
            raise RuntimeError('timed out waiting for the advertisement of %s (%d discoveries)' % (address, rounds))
        out['discovered'] = ms()
        out['discoveries'] = rounds
    device = dbus.Interface(bus.get_object(BLUEZ, dev), 'org.bluez.Device1')
    if not bool(dev_prop(dev, 'Connected')):
        try:
            device.Connect(timeout=60)
        except dbus.exceptions.DBusException as e:
            if 'AlreadyConnected' not in e.get_dbus_name() and 'Already' not in str(e):
                raise
    out['connected'] = ms()
    wait_for('ServicesResolved', lambda: bool(dev_prop(dev, 'ServicesResolved')), 60)
    out['resolved'] = ms()
    out['paired'] = bool(dev_prop(dev, 'Paired'))
    return dev


def main():
    if op == 'connect':
        connect()
        return
    dev = device_path()
    if not dev:
        raise RuntimeError('bluetoothd does not know ' + address)
    if op == 'info':
        props = dbus.Interface(bus.get_object(BLUEZ, dev), PROPS).GetAll('org.bluez.Device1')
        out['name'] = str(props.get('Name', ''))
        out['addressType'] = str(props.get('AddressType', ''))
        out['uuids'] = [str(u) for u in props.get('UUIDs', [])]
        out['connected'] = bool(props.get('Connected', False))
        return
    if op == 'disconnect':
        dbus.Interface(bus.get_object(BLUEZ, dev), 'org.bluez.Device1').Disconnect()
        wait_for('Connected false', lambda: not bool(dev_prop(dev, 'Connected')), 30)
        return
    if not bool(dev_prop(dev, 'Connected')):
        dev = connect()
    path = char_path(dev, args[2])
    chrc = dbus.Interface(bus.get_object(BLUEZ, path), 'org.bluez.GattCharacteristic1')
    cprops = dbus.Interface(bus.get_object(BLUEZ, path), PROPS)
    if op == 'read':
        out['value'] = bytes(chrc.ReadValue({}, timeout=120)).hex()
    elif op == 'write':
        chrc.WriteValue(dbus.Array(bytes.fromhex(args[3]), signature='y'), {'type': dbus.String('request')}, timeout=120)
    elif op == 'write-command':
        chrc.WriteValue(dbus.Array(bytes.fromhex(args[3]), signature='y'), {'type': dbus.String('command')}, timeout=120)
    elif op in ('notify', 'listen'):
        before = bytes(cprops.Get('org.bluez.GattCharacteristic1', 'Value'))
        if op == 'notify':
            chrc.StartNotify()
            out['started'] = ms()
        seen = []

        def changed():
            v = bytes(cprops.Get('org.bluez.GattCharacteristic1', 'Value'))
            if v != (seen[-1] if seen else before):
                seen.append(v)
            return len(seen) >= (int(args[3]) if op == 'notify' else 1)
        try:
            wait_for('a notification', changed, 30 if op == 'notify' else float(args[3]))
        except RuntimeError:
            if op == 'notify':
                raise
        out['values'] = [v.hex() for v in seen]
        out['notifying'] = bool(cprops.Get('org.bluez.GattCharacteristic1', 'Notifying'))
    elif op == 'acquire-notify':
        fd, mtu = chrc.AcquireNotify({}, timeout=120)
        sock = fd.take()
        out['started'] = ms()
        out['mtu'] = int(mtu)
        values = []
        end = time.monotonic() + 60
        try:
            while len(values) < int(args[3]):
                left = end - time.monotonic()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    raise RuntimeError('%d of %s notifications within 60 s: %s' % (len(values), args[3], values))
                data = os.read(sock, 4096)
                if not data:
                    raise RuntimeError('bluetoothd closed the notification socket after %d' % len(values))
                values.append(data.hex())
        finally:
            os.close(sock)
        out['values'] = values
    else:
        raise RuntimeError('unknown operation ' + op)
    out['paired'] = bool(dev_prop(dev, 'Paired'))


try:
    main()
    out['ok'] = True
except Exception as e:  # every failure is data for the host
    out['error'] = '%s: %s' % (type(e).__name__, e)
out['ms'] = ms()
print(json.dumps(out))
sys.stdout.flush()
