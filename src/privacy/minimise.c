/*
 * Data minimisation at ingest: client addresses are truncated to the network a site needs
 * for coarse geography (IPv4 /24, IPv6 /48, the usual anonymisation of web analytics), and a
 * user agent, which is a strong fingerprint, is reduced to the device class that the
 * recommender's context popularity uses.
 */
#include "privacy/privacy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

bool privacy_ip_truncate(const char *ip, size_t len, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof text || cap < INET6_ADDRSTRLEN)
        return false;
    memcpy(text, ip, len);
    text[len] = '\0';
    uint8_t a[16];
    if (inet_pton(AF_INET, text, a) == 1) {
        a[3] = 0;
        return inet_ntop(AF_INET, a, out, (socklen_t)cap) != NULL;
    }
    if (inet_pton(AF_INET6, text, a) != 1)
        return false;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a, mapped, sizeof mapped))
        a[15] = 0; /* an IPv4 client seen through an IPv6 socket: its /24 */
    else
        memset(a + 6, 0, 10);
    return inet_ntop(AF_INET6, a, out, (socklen_t)cap) != NULL;
}

static bool has(const char *ua, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)ua[i + k]) == needle[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static bool has_any(const char *ua, size_t len, const char *const *needles)
{
    for (; *needles; needles++)
        if (has(ua, len, *needles))
            return true;
    return false;
}

const char *privacy_device_class(const char *ua, size_t len)
{
    static const char *const bots[] = {
        "bot",        "crawler", "spider",   "slurp",      "curl/",
        "wget/",      "python-", "headless", "httpclient", "facebookexternalhit",
        "lighthouse", NULL};
    static const char *const tablets[] = {"ipad", "tablet", "kindle", "silk/", "playbook", NULL};
    static const char *const mobiles[] = {"mobi",       "iphone",     "ipod",          "android",
                                          "blackberry", "opera mini", "windows phone", NULL};
    static const char *const desktops[] = {"windows nt", "macintosh", "x11", "linux", "cros", NULL};
    if (len == 0)
        return "other";
    if (has_any(ua, len, bots))
        return "bot";
    /* Android tablets say "Android" without "Mobile". */
    if (has_any(ua, len, tablets) || (has(ua, len, "android") && !has(ua, len, "mobile")))
        return "tablet";
    if (has_any(ua, len, mobiles))
        return "mobile";
    if (has_any(ua, len, desktops))
        return "desktop";
    return "other";
}
