#!/usr/bin/env python3
# A one-characteristic GATT application for bluetoothd (BlueZ 5.66, org.bluez.GattManager1 in
# doc/gatt-api.txt) that exists to test signed writes: service 5167ed00-..., characteristic
# 5167ed01-... with the flags read, write-without-response and authenticated-signed-writes (the last one
# makes bluetoothd set the characteristic property 0x40, Vol 3, Part G, 3.3.1.1). Every WriteValue that
# reaches the application is printed as "WRITE <hex> <options>" (flushed), so the host test sees exactly
# what bluetoothd let through; ReadValue returns the last value written.
#
#   python3 signed-gatt-server.py      prints "REGISTERED" once bluetoothd took the application
import sys

import dbus
import dbus.service
import dbus.mainloop.glib
from gi.repository import GLib

BLUEZ = 'org.bluez'
GATT_SERVICE = 'org.bluez.GattService1'
GATT_CHRC = 'org.bluez.GattCharacteristic1'
OM = 'org.freedesktop.DBus.ObjectManager'
PROPS = 'org.freedesktop.DBus.Properties'
SERVICE_UUID = '5167ed00-7b1e-4c0d-9a5e-2f1e0d9c8b00'
CHRC_UUID = '5167ed01-7b1e-4c0d-9a5e-2f1e0d9c8b00'
ROOT = '/blewire/signed'


class Service(dbus.service.Object):
    def __init__(self, bus):
        self.path = ROOT + '/service0'
        dbus.service.Object.__init__(self, bus, self.path)

    def props(self):
        return {GATT_SERVICE: {'UUID': SERVICE_UUID, 'Primary': dbus.Boolean(True)}}

    @dbus.service.method(PROPS, in_signature='s', out_signature='a{sv}')
    def GetAll(self, interface):
        return self.props()[interface]


class Characteristic(dbus.service.Object):
    def __init__(self, bus, service):
        self.path = service.path + '/char0'
        self.service = service
        self.value = [dbus.Byte(0)]
        dbus.service.Object.__init__(self, bus, self.path)

    def props(self):
        return {GATT_CHRC: {
            'Service': dbus.ObjectPath(self.service.path), 'UUID': CHRC_UUID,
            'Flags': dbus.Array(['read', 'write-without-response', 'authenticated-signed-writes'], signature='s'),
        }}

    @dbus.service.method(PROPS, in_signature='s', out_signature='a{sv}')
    def GetAll(self, interface):
        return self.props()[interface]

    @dbus.service.method(GATT_CHRC, in_signature='a{sv}', out_signature='ay')
    def ReadValue(self, options):
        return self.value

    @dbus.service.method(GATT_CHRC, in_signature='aya{sv}')
    def WriteValue(self, value, options):
        self.value = value
        opts = ','.join('%s=%s' % (k, options[k]) for k in sorted(options) if k != 'device')
        print('WRITE %s %s' % (bytes(value).hex(), opts or '-'), flush=True)


class Application(dbus.service.Object):
    def __init__(self, bus):
        dbus.service.Object.__init__(self, bus, ROOT)
        self.service = Service(bus)
        self.chrc = Characteristic(bus, self.service)

    @dbus.service.method(OM, out_signature='a{oa{sa{sv}}}')
    def GetManagedObjects(self):
        return {dbus.ObjectPath(o.path): o.props() for o in (self.service, self.chrc)}


def main():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    app = Application(bus)
    manager = dbus.Interface(bus.get_object(BLUEZ, '/org/bluez/hci0'), 'org.bluez.GattManager1')
    loop = GLib.MainLoop()

    def ok():
        print('REGISTERED', flush=True)

    def failed(e):
        print('FAILED %s' % e, flush=True)
        loop.quit()

    manager.RegisterApplication(dbus.ObjectPath(ROOT), {}, reply_handler=ok, error_handler=failed)
    loop.run()
    return 1


if __name__ == '__main__':
    sys.exit(main())
