/* usb: find a modem's USB device, its AT port and its network interface through sysfs
 * (internal to modem/).
 *
 * ttyUSBn and wwanN numbers follow probe order, which changes between boots and when two modems
 * enumerate in a different order. The stable key is the USB topology: the tty's interface
 * (1-1.2:1.2) hangs under a USB device (1-1.2), and the modem's network interface points into
 * that same device. Every lookup walks sysfs from a root given by the caller ("/sys" in the
 * firmware, a fixture tree in the tests). */
#ifndef CORRIDOR_MODEM_USB_H
#define CORRIDOR_MODEM_USB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USB_MAX_NETDEVS 4

struct usb_port_info {
    char tty[32];          /* "ttyUSB2": kernel name of the port after resolving symlinks */
    char usb_dev[32];      /* "1-1.2": the USB device (bus-port path), stable per socket */
    char usb_path[512];    /* resolved sysfs directory of that USB device */
    int interface;         /* bInterfaceNumber of the tty's interface, -1 if unknown */
    uint16_t vid, pid;     /* idVendor / idProduct */
    char serial[64];       /* iSerial string, "" if the device has none */
    char manufacturer[64]; /* "" if absent */
    char product[64];      /* "" if absent */
    unsigned nnet;         /* network interfaces of the same USB device, sorted by name */
    char net[USB_MAX_NETDEVS][16];
    int net_interface[USB_MAX_NETDEVS]; /* their bInterfaceNumber, -1 if unknown */
};

/* Resolve port (/dev/serial/by-id/..., /dev/serial/by-path/..., /dev/ttyUSBn or a bare
 * "ttyUSBn") to its USB device and network interfaces under sysfs_root (NULL = "/sys").
 * 0 on success; -1 with err naming the port and the missing sysfs piece. A port that is not on
 * USB (a pty, a platform UART) is an error. */
int usb_match_port(const char *port, const char *sysfs_root, struct usb_port_info *out, char *err,
                   size_t errlen);

/* Find the tty of interface number `interface` on USB device usb_dev ("1-1.2"); writes its
 * kernel name ("ttyUSB2") into tty. 0 found, -1 not found. Used to re-find a modem's AT port
 * after it re-enumerated under a different ttyUSBn. */
int usb_find_tty(const char *sysfs_root, const char *usb_dev, int interface, char *tty,
                 size_t ttylen);

/* Is vid a modem vendor we drive? SIMCom 0x1e0e, Quectel 0x2c7c. */
bool usb_is_modem_vid(uint16_t vid);

struct usb_candidate {
    char port[64]; /* "/dev/ttyUSB2" as libserialport names it */
    uint16_t vid, pid;
    char serial[64];
    char product[64];
    int interface; /* from sysfs, -1 if unknown */
};
/* List serial ports of known modem vendors with libserialport's USB enumeration, interface
 * numbers filled in from sysfs_root (NULL = "/sys"). Returns how many were written (<= max),
 * -1 with err when enumeration itself failed. */
int usb_list_modem_ports(const char *sysfs_root, struct usb_candidate *out, size_t max, char *err,
                         size_t errlen);

#endif
