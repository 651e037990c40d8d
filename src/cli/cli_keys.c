/* The keys every command that reads or writes sealed data opens: the data key and the per-user
 * key store of a data directory. */
#include "cli/cli_int.h"
#include "privacy/apikey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int cli__lock_data_dir(const char *data, int *fd_out)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/LOCK", data);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? CORE_E_EXISTS : -e;
    }
    *fd_out = fd;
    return 0;
}

int cli__keys_open(const char *data, const char *key_path, bool create, int64_t max_users,
                   struct cli_keys *k)
{
    char path[1200], meta[1200], dir[1200];
    memset(k, 0, sizeof *k);
    if (key_path && *key_path)
        snprintf(path, sizeof path, "%s", key_path);
    else
        snprintf(path, sizeof path, "%s/privacy/data.key", data);
    snprintf(meta, sizeof meta, "%s/log/meta", data);
    struct stat st;
    bool have_key = stat(path, &st) == 0;
    if (!have_key && (!create || stat(meta, &st) == 0)) {
        LOG_ERROR("data key missing: the log and checkpoints of this data directory cannot be "
                  "opened without it; restore it from your backup (or pass --data-key FILE)",
                  "path=%s", path);
        return CORE_E_NOTFOUND;
    }
    snprintf(dir, sizeof dir, "%s/privacy/userkeys", data);
    struct core_buf mt;
    core_buf_init(&mt);
    /* A log of the unencrypted format has no store: evlog refuses it with the reason. */
    bool sealed_log = core_read_file(meta, 4096, &mt) == 0 && !strstr(mt.data, "format=1\n");
    core_buf_dispose(&mt);
    if (sealed_log && stat(dir, &st) != 0) {
        LOG_ERROR("user key store missing beside an existing log: its users' records could not "
                  "be opened; restore DIR/privacy/userkeys from your backup",
                  "dir=%s", dir);
        return CORE_E_NOTFOUND;
    }
    bool created = false;
    int rc = seal_data_key_load_or_create(path, &k->data_key, &created);
    if (rc < 0) {
        LOG_ERROR("cannot load the data key", "path=%s err=\"%s\"", path, core_strerror(rc));
        return rc;
    }
    if (created)
        LOG_INFO("created the data key: everything stored is encrypted under it; back it up "
                 "(losing it loses the data)",
                 "path=%s", path);
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    /* A reader of a directory without a log (nothing to open) writes nothing. */
    uo.dir = create || stat(dir, &st) == 0 ? dir : NULL;
    uo.data_key = &k->data_key;
    if (max_users > 0)
        uo.max_users = max_users;
    else if (!create)
        uo.max_users = INT32_MAX / 4; /* a reader opens whatever a server stored */
    rc = userkeys_open(&uo, &k->uk);
    if (rc < 0) {
        seal_key_dispose(&k->data_key);
        return rc;
    }
    rc = cli__epochkeys_open(data, k);
    if (rc < 0)
        cli__keys_close(k);
    return rc;
}

int cli__epochkeys_open(const char *data, struct cli_keys *k)
{
    char path[1100];
    struct epochkeys_options eo;
    epochkeys_options_init(&eo);
    snprintf(path, sizeof path, "%s/privacy/epochkeys", data);
    eo.path = path;
    eo.data_key = &k->data_key;
    int rc = epochkeys_open(&eo, &k->ek);
    if (rc < 0)
        LOG_ERROR("cannot open the epoch key store", "path=%s err=\"%s\"", path, core_strerror(rc));
    return rc;
}

void cli__keys_close(struct cli_keys *k)
{
    userkeys_free(k->uk);
    k->uk = NULL;
    epochkeys_free(k->ek);
    k->ek = NULL;
    seal_key_dispose(&k->data_key);
}

int cli__apikeys_open(const char *data, bool insecure_no_auth, const char *exposed,
                      struct apikey_store **out)
{
    *out = NULL;
    if (insecure_no_auth) {
        LOG_WARN("AUTHENTICATION IS OFF (--insecure-no-auth): anyone who can reach this port "
                 "can do what this node serves; use only for local experiments",
                 "data=%s exposed=\"%s\"", data, exposed);
        return 0;
    }
    char path[1100], admin[1100];
    snprintf(path, sizeof path, "%s/privacy/apikeys.json", data);
    snprintf(admin, sizeof admin, "%s/privacy/admin.key", data);
    bool created = false;
    int rc = apikey_store_open(path, admin, out, &created);
    if (rc < 0)
        return rc;
    if (created)
        LOG_INFO("created an admin API key on first start; it is in this file (0600), send it as "
                 "Authorization: Bearer <key>; recstream keys create makes more",
                 "path=%s", admin);
    else
        LOG_INFO("API keys loaded", "path=%s active=%zu", path, apikey_store_active(*out));
    return 0;
}
