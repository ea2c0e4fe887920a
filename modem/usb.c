/* usb: sysfs USB topology walks that pair a modem's AT port with its network interface.
 *
 * Layout followed (Linux, usb-serial "option" driver and cdc-acm alike):
 *   <root>/class/tty/ttyUSB2 -> ../../devices/.../usb1/1-1/1-1.2/1-1.2:1.2/ttyUSB2/tty/ttyUSB2
 *   <root>/class/tty/ttyUSB2/device -> ../../../ttyUSB2       (usb-serial: port under interface)
 *   <root>/class/tty/ttyACM0/device -> ../../../1-1.2:1.2     (cdc-acm: the interface itself)
 *   <root>/class/net/wwan0/device   -> ../../../1-1.2:1.5
 * From the resolved "device" directory we walk up: the first directory with bInterfaceNumber
 * is the interface, the first with idVendor is the USB device. Walking up instead of assuming a
 * fixed depth covers both drivers. The walk never leaves the resolved sysfs root. */
#include "modem/usb.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libserialport.h>

#include "common/common.h"

static const char *root_or_default(const char *root)
{
    return root && *root ? root : "/sys";
}

/* Read a small sysfs attribute, trimmed. false if absent or empty. */
static bool read_attr(const char *dir, const char *name, char *out, size_t outlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[128];
    ssize_t k = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (k <= 0)
        return false;
    buf[k] = '\0';
    str_trim(buf);
    if (!buf[0])
        return false;
    str_copy(out, buf, outlen);
    return true;
}

static bool read_hex(const char *dir, const char *name, unsigned long *out)
{
    char v[32], *end;
    if (!read_attr(dir, name, v, sizeof(v)))
        return false;
    errno = 0;
    unsigned long x = strtoul(v, &end, 16);
    if (errno || end == v || *end)
        return false;
    *out = x;
    return true;
}

/* From a resolved device directory, walk up to the USB interface and device. usbdev gets the
 * device directory; *ifnum the interface number (or -1). false if no USB device above. */
static bool walk_to_usb(const char *root_real, const char *devdir, char *usbdev, size_t usblen,
                        int *ifnum)
{
    char dir[PATH_MAX];
    str_copy(dir, devdir, sizeof(dir));
    size_t rl = strlen(root_real);
    *ifnum = -1;
    for (int depth = 0; depth < 32; depth++) {
        if (strncmp(dir, root_real, rl) != 0 || strlen(dir) <= rl)
            return false;
        unsigned long v;
        if (*ifnum < 0 && read_hex(dir, "bInterfaceNumber", &v) && v < 256)
            *ifnum = (int)v;
        if (read_hex(dir, "idVendor", &v)) {
            str_copy(usbdev, dir, usblen);
            return true;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            return false;
        *slash = '\0';
    }
    return false;
}

/* Resolve <root>/class/<cls>/<name>/device to the USB device it belongs to. */
static bool class_dev_usb(const char *root, const char *root_real, const char *cls,
                          const char *name, char *usbdev, size_t usblen, int *ifnum)
{
    char link[PATH_MAX], real[PATH_MAX];
    if (snprintf(link, sizeof(link), "%s/class/%s/%s/device", root, cls, name) >= (int)sizeof(link))
        return false;
    if (!realpath(link, real))
        return false;
    return walk_to_usb(root_real, real, usbdev, usblen, ifnum);
}

/* Kernel name of the tty behind port: follows by-id/by-path symlinks. */
static bool tty_name_of(const char *port, char *out, size_t outlen)
{
    char real[PATH_MAX];
    const char *p = port;
    if (realpath(port, real)) {
        p = real;
    } else {
        /* The node may already be gone (device vanished); a dangling symlink still names it. */
        ssize_t k = readlink(port, real, sizeof(real) - 1);
        if (k > 0) {
            real[k] = '\0';
            p = real;
        }
    }
    const char *base = strrchr(p, '/');
    base = base ? base + 1 : p;
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return false;
    return str_copy(out, base, outlen) < outlen;
}

static int cmp_net(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void find_netdevs(const char *root, const char *root_real, struct usb_port_info *out)
{
    char dirpath[PATH_MAX];
    snprintf(dirpath, sizeof(dirpath), "%s/class/net", root);
    DIR *d = opendir(dirpath);
    if (!d)
        return;
    struct {
        char name[16];
        int ifn;
    } found[USB_MAX_NETDEVS];
    unsigned n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < USB_MAX_NETDEVS) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(found[0].name))
            continue;
        char usbdev[PATH_MAX];
        int ifn;
        if (!class_dev_usb(root, root_real, "net", de->d_name, usbdev, sizeof(usbdev), &ifn))
            continue;
        if (strcmp(usbdev, out->usb_path) != 0)
            continue;
        str_copy(found[n].name, de->d_name, sizeof(found[n].name));
        found[n].ifn = ifn;
        n++;
    }
    closedir(d);
    /* readdir order is arbitrary; sort so the result is stable. */
    qsort(found, n, sizeof(found[0]), cmp_net);
    for (unsigned i = 0; i < n; i++) {
        str_copy(out->net[i], found[i].name, sizeof(out->net[i]));
        out->net_interface[i] = found[i].ifn;
    }
    out->nnet = n;
}

int usb_match_port(const char *port, const char *sysfs_root, struct usb_port_info *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->interface = -1;
    const char *root = root_or_default(sysfs_root);
    char root_real[PATH_MAX];
    if (!port || !*port) {
        snprintf(err, errlen, "usb: empty port path");
        return -1;
    }
    if (!realpath(root, root_real)) {
        snprintf(err, errlen, "usb %s: sysfs root %s: %s", port, root, strerror(errno));
        return -1;
    }
    if (!tty_name_of(port, out->tty, sizeof(out->tty))) {
        snprintf(err, errlen, "usb %s: cannot name the tty", port);
        return -1;
    }
    char usbdev[PATH_MAX];
    int ifn;
    if (!class_dev_usb(root, root_real, "tty", out->tty, usbdev, sizeof(usbdev), &ifn)) {
        snprintf(err, errlen, "usb %s: %s/class/tty/%s/device does not lead to a USB device", port,
                 root, out->tty);
        return -1;
    }
    if (str_copy(out->usb_path, usbdev, sizeof(out->usb_path)) >= sizeof(out->usb_path)) {
        snprintf(err, errlen, "usb %s: sysfs path too long", port);
        return -1;
    }
    const char *base = strrchr(usbdev, '/');
    str_copy(out->usb_dev, base ? base + 1 : usbdev, sizeof(out->usb_dev));
    out->interface = ifn;
    unsigned long v;
    if (read_hex(usbdev, "idVendor", &v))
        out->vid = (uint16_t)v;
    if (read_hex(usbdev, "idProduct", &v))
        out->pid = (uint16_t)v;
    read_attr(usbdev, "serial", out->serial, sizeof(out->serial));
    read_attr(usbdev, "manufacturer", out->manufacturer, sizeof(out->manufacturer));
    read_attr(usbdev, "product", out->product, sizeof(out->product));
    find_netdevs(root, root_real, out);
    return 0;
}

int usb_find_tty(const char *sysfs_root, const char *usb_dev, int interface, char *tty,
                 size_t ttylen)
{
    const char *root = root_or_default(sysfs_root);
    char root_real[PATH_MAX], dirpath[PATH_MAX];
    if (!usb_dev || !*usb_dev || !realpath(root, root_real))
        return -1;
    snprintf(dirpath, sizeof(dirpath), "%s/class/tty", root);
    DIR *d = opendir(dirpath);
    if (!d)
        return -1;
    int rc = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char usbdev[PATH_MAX];
        int ifn;
        if (!class_dev_usb(root, root_real, "tty", de->d_name, usbdev, sizeof(usbdev), &ifn))
            continue;
        const char *base = strrchr(usbdev, '/');
        if (strcmp(base ? base + 1 : usbdev, usb_dev) == 0 && ifn == interface) {
            rc = str_copy(tty, de->d_name, ttylen) < ttylen ? 0 : -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

bool usb_is_modem_vid(uint16_t vid)
{
    return vid == 0x1e0e || vid == 0x2c7c;
}

int usb_list_modem_ports(const char *sysfs_root, struct usb_candidate *out, size_t max, char *err,
                         size_t errlen)
{
    struct sp_port **ports = NULL;
    if (sp_list_ports(&ports) != SP_OK) {
        char *m = sp_last_error_message();
        snprintf(err, errlen, "usb: sp_list_ports: %s", m ? m : "failed");
        sp_free_error_message(m);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; ports[i] && n < max; i++) {
        struct sp_port *p = ports[i];
        int vid = 0, pid = 0;
        if (sp_get_port_transport(p) != SP_TRANSPORT_USB ||
            sp_get_port_usb_vid_pid(p, &vid, &pid) != SP_OK || !usb_is_modem_vid((uint16_t)vid))
            continue;
        struct usb_candidate *c = &out[n];
        memset(c, 0, sizeof(*c));
        const char *name = sp_get_port_name(p);
        if (!name || str_copy(c->port, name, sizeof(c->port)) >= sizeof(c->port))
            continue;
        c->vid = (uint16_t)vid;
        c->pid = (uint16_t)pid;
        const char *sn = sp_get_port_usb_serial(p);
        const char *pr = sp_get_port_usb_product(p);
        str_copy(c->serial, sn ? sn : "", sizeof(c->serial));
        str_copy(c->product, pr ? pr : "", sizeof(c->product));
        c->interface = -1;
        struct usb_port_info info;
        char e2[64];
        if (usb_match_port(c->port, sysfs_root, &info, e2, sizeof(e2)) == 0)
            c->interface = info.interface;
        n++;
    }
    sp_free_port_list(ports);
    return (int)n;
}
