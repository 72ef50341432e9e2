#include "dpt/core/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static const cfg_key *find_key(const char *section, const char *key) {
    size_t n;
    const cfg_key *k = config_schema(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].section, section) == 0 && strcmp(k[i].key, key) == 0) return &k[i];
    return NULL;
}

static bool section_known(const char *section) {
    size_t n;
    const cfg_key *k = config_schema(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].section, section) == 0) return true;
    return false;
}

/* "lr, momentum, nesterov" for the keys of a section. */
static void section_keys(const char *section, char *buf, size_t size) {
    size_t n, off = 0;
    const cfg_key *k = config_schema(&n);
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < size; i++)
        if (strcmp(k[i].section, section) == 0)
            off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? ", " : "", k[i].key);
}

static void sections(char *buf, size_t size) {
    size_t n, off = 0;
    const cfg_key *k = config_schema(&n);
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < size; i++)
        if (i == 0 || strcmp(k[i].section, k[i - 1].section) != 0)
            off += (size_t)snprintf(buf + off, size - off, "%s[%s]", off ? " " : "", k[i].section);
}

static void range_text(const cfg_key *k, char *buf, size_t size) {
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%g", k->min);
    if (k->max >= 1e18) snprintf(hi, sizeof hi, "inf");
    else snprintf(hi, sizeof hi, "%g", k->max);
    snprintf(buf, size, "%s%s, %s]", k->min_open ? "(" : "[", lo, hi);
}

static bool in_range(const cfg_key *k, double v) {
    if (isnan(v)) return false;
    if (k->min_open ? !(v > k->min) : !(v >= k->min)) return false;
    return v <= k->max;
}

static dpt_status bad_value(const cfg_key *k, const char *value, const char *where, const char *what) {
    return dpt_error(DPT_ERR_CONFIG, "%s: %s.%s = '%s': %s", where, k->section, k->key, value, what);
}

static dpt_status parse_number(const cfg_key *k, const char *value, const char *where, double *out) {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *trim(end) != '\0' || errno == ERANGE)
        return bad_value(k, value, where, "not a number");
    if (!in_range(k, v)) {
        char r[96], msg[160];
        range_text(k, r, sizeof r);
        snprintf(msg, sizeof msg, "out of range, allowed %s", r);
        return bad_value(k, value, where, msg);
    }
    *out = v;
    return DPT_OK;
}

/* "V" or "V,E:V,...": value V from epoch E. Empty is allowed where the default is empty. */
static dpt_status parse_phases(const cfg_key *k, const char *value, const char *where, cfg_phases *out) {
    cfg_phases ph = {0};
    const char *p = value;
    if (!*p && !k->def[0]) {
        *out = ph;
        return DPT_OK;
    }
    while (true) {
        if (ph.n == CFG_LIST_MAX) return bad_value(k, value, where, "more than 16 phases");
        char *end;
        errno = 0;
        long long a = strtoll(p, &end, 10), epoch = 0, v = a;
        if (end == p || errno == ERANGE) goto bad;
        p = end;
        if (*p == ':') {
            epoch = a;
            v = strtoll(p + 1, &end, 10);
            if (end == p + 1 || errno == ERANGE) goto bad;
            p = end;
        }
        while (isspace((unsigned char)*p)) p++;
        if (!in_range(k, (double)v)) {
            char r[96], msg[200];
            range_text(k, r, sizeof r);
            snprintf(msg, sizeof msg, "value %lld out of range, allowed %s", v, r);
            return bad_value(k, value, where, msg);
        }
        if (ph.n == 0 && epoch != 0) return bad_value(k, value, where, "the first phase must start at epoch 0");
        if (ph.n > 0 && epoch <= ph.epoch[ph.n - 1]) {
            char msg[160];
            snprintf(msg, sizeof msg, "phase epochs must increase (%lld after %lld)", epoch,
                     (long long)ph.epoch[ph.n - 1]);
            return bad_value(k, value, where, msg);
        }
        ph.epoch[ph.n] = epoch;
        ph.value[ph.n] = v;
        ph.n++;
        if (!*p) break;
        if (*p != ',') goto bad;
        p++;
        while (isspace((unsigned char)*p)) p++;
    }
    *out = ph;
    return DPT_OK;
bad:
    return bad_value(k, value, where, "expected V or phases 'V,E:V,...' (value V from epoch E on), e.g. 128,13:224");
}

dpt_status config_set(dpt_config *c, const char *section, const char *key, const char *value_in,
                      const char *where) {
    if (!section_known(section)) {
        char s[512];
        sections(s, sizeof s);
        return dpt_error(DPT_ERR_CONFIG, "%s: unknown section [%s] (sections: %s)", where, section, s);
    }
    const cfg_key *k = find_key(section, key);
    if (!k) {
        char keys[1024];
        section_keys(section, keys, sizeof keys);
        return dpt_error(DPT_ERR_CONFIG, "%s: unknown key '%s' in section [%s] (keys: %s)", where, key,
                         section, keys);
    }
    char vbuf[CFG_STR_MAX];
    snprintf(vbuf, sizeof vbuf, "%s", value_in);
    char *value = trim(vbuf);
    char *field = (char *)c + k->offset;
    double v;
    switch (k->type) {
    case CFG_INT: {
        char *end;
        errno = 0;
        long long iv = strtoll(value, &end, 10);
        if (end == value || *trim(end) != '\0' || errno == ERANGE)
            return bad_value(k, value, where, "not an integer");
        if (!in_range(k, (double)iv)) {
            char r[96], msg[160];
            range_text(k, r, sizeof r);
            snprintf(msg, sizeof msg, "out of range, allowed %s", r);
            return bad_value(k, value, where, msg);
        }
        *(int64_t *)field = iv;
        return DPT_OK;
    }
    case CFG_FLOAT:
        DPT_TRY(parse_number(k, value, where, &v));
        *(double *)field = v;
        return DPT_OK;
    case CFG_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "on"))
            *(bool *)field = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no") ||
                 !strcmp(value, "off"))
            *(bool *)field = false;
        else
            return bad_value(k, value, where, "not a boolean (true|false|1|0|yes|no|on|off)");
        return DPT_OK;
    case CFG_STRING:
        if (strlen(value) >= k->size) return bad_value(k, value, where, "too long");
        snprintf(field, k->size, "%s", value);
        return DPT_OK;
    case CFG_ENUM: {
        char choices[256];
        snprintf(choices, sizeof choices, "%s", k->choices);
        bool ok = false;
        for (char *save = NULL, *tok = strtok_r(choices, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
            if (strcmp(tok, value) == 0) ok = true;
        if (!ok) {
            char msg[320];
            snprintf(msg, sizeof msg, "not one of %s", k->choices);
            return bad_value(k, value, where, msg);
        }
        snprintf(field, k->size, "%s", value);
        return DPT_OK;
    }
    case CFG_FLOAT_LIST: {
        cfg_list list = {0};
        char tmp[CFG_STR_MAX];
        snprintf(tmp, sizeof tmp, "%s", value);
        for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (list.n == CFG_LIST_MAX) return bad_value(k, value, where, "more than 16 elements");
            DPT_TRY(parse_number(k, trim(tok), where, &list.v[list.n]));
            list.n++;
        }
        *(cfg_list *)field = list;
        return DPT_OK;
    }
    case CFG_PHASES: return parse_phases(k, value, where, (cfg_phases *)field);
    }
    return dpt_error(DPT_ERR_INTERNAL, "config: unhandled type");
}

void config_defaults(dpt_config *c) {
    memset(c, 0, sizeof *c);
    size_t n;
    const cfg_key *k = config_schema(&n);
    for (size_t i = 0; i < n; i++) {
        dpt_status s = config_set(c, k[i].section, k[i].key, k[i].def, "schema default");
        DPT_CHECK_LIB("config", s == DPT_OK, k[i].key, "%s", dpt_error_message());
    }
}

dpt_status config_load_file(dpt_config *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return dpt_error(DPT_ERR_IO, "cannot open config file %s: %s", path, strerror(errno));
    char line[4096], section[64] = "", where[4200];
    int lineno = 0;
    dpt_status st = DPT_OK;
    /* Duplicate detection: remember which keys this file set. */
    size_t nkeys;
    config_schema(&nkeys);
    int *set_at = dpt_xcalloc(nkeys, sizeof(int));
    const cfg_key *schema = config_schema(&nkeys);
    while (st == DPT_OK && fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            st = dpt_error(DPT_ERR_CONFIG, "%s: line longer than %zu characters", where, sizeof line - 1);
            break;
        }
        /* Comments start with ';' or '#' at the start of a line or after whitespace. */
        for (char *p = line; *p; p++)
            if ((*p == ';' || *p == '#') && (p == line || isspace((unsigned char)p[-1]))) {
                *p = '\0';
                break;
            }
        char *s = trim(line);
        if (!*s) continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e || e[1] != '\0') {
                st = dpt_error(DPT_ERR_CONFIG, "%s: malformed section header '%s'", where, s);
                break;
            }
            *e = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            if (!section_known(section)) {
                char secs[512];
                sections(secs, sizeof secs);
                st = dpt_error(DPT_ERR_CONFIG, "%s: unknown section [%s] (sections: %s)", where, section, secs);
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            st = dpt_error(DPT_ERR_CONFIG, "%s: expected 'key = value', got '%s'", where, s);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (!section[0]) {
            st = dpt_error(DPT_ERR_CONFIG, "%s: key '%s' outside any [section]", where, key);
            break;
        }
        const cfg_key *k = find_key(section, key);
        if (k) {
            size_t idx = (size_t)(k - schema);
            if (set_at[idx]) {
                st = dpt_error(DPT_ERR_CONFIG, "%s: %s.%s set twice (first on line %d)", where, section, key,
                               set_at[idx]);
                break;
            }
            set_at[idx] = lineno;
        }
        st = config_set(c, section, key, value, where);
    }
    free(set_at);
    fclose(f);
    return st;
}

dpt_status config_apply_override(dpt_config *c, const char *assignment) {
    char buf[CFG_STR_MAX + 128], where[CFG_STR_MAX + 160];
    snprintf(buf, sizeof buf, "%s", assignment);
    snprintf(where, sizeof where, "--set %s", assignment);
    char *eq = strchr(buf, '=');
    char *dot = strchr(buf, '.');
    if (!eq || !dot || dot > eq)
        return dpt_error(DPT_ERR_CONFIG, "%s: expected section.key=value", where);
    *eq = '\0';
    *dot = '\0';
    return config_set(c, trim(buf), trim(dot + 1), eq + 1, where);
}

void config_phases_text(const cfg_phases *p, char *buf, size_t size) {
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->n && off < size; i++) {
        if (i == 0) off += (size_t)snprintf(buf + off, size - off, "%lld", (long long)p->value[i]);
        else off += (size_t)snprintf(buf + off, size - off, ",%lld:%lld", (long long)p->epoch[i], (long long)p->value[i]);
    }
}

static void value_text(const dpt_config *c, const cfg_key *k, char *buf, size_t size) {
    const char *field = (const char *)c + k->offset;
    switch (k->type) {
    case CFG_INT: snprintf(buf, size, "%lld", (long long)*(const int64_t *)field); break;
    case CFG_FLOAT: snprintf(buf, size, "%.17g", *(const double *)field); break;
    case CFG_BOOL: snprintf(buf, size, "%s", *(const bool *)field ? "true" : "false"); break;
    case CFG_STRING:
    case CFG_ENUM: snprintf(buf, size, "%s", field); break;
    case CFG_FLOAT_LIST: {
        const cfg_list *l = (const cfg_list *)field;
        size_t off = 0;
        buf[0] = '\0';
        for (int i = 0; i < l->n && off < size; i++)
            off += (size_t)snprintf(buf + off, size - off, i ? ",%.17g" : "%.17g", l->v[i]);
        break;
    }
    case CFG_PHASES: config_phases_text((const cfg_phases *)field, buf, size); break;
    }
}

void config_write_stream(const dpt_config *c, FILE *f) {
    size_t n;
    const cfg_key *k = config_schema(&n);
    char v[CFG_STR_MAX + 64];
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(k[i].section, k[i - 1].section) != 0) fprintf(f, "%s[%s]\n", i ? "\n" : "", k[i].section);
        value_text(c, &k[i], v, sizeof v);
        fprintf(f, "%s = %s\n", k[i].key, v);
    }
}

dpt_status config_write(const dpt_config *c, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return dpt_error(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "; resolved configuration written by dptrain " DPT_VERSION "\n");
    config_write_stream(c, f);
    if (fclose(f) != 0) return dpt_error(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return DPT_OK;
}

void config_print_schema(FILE *f) {
    size_t n;
    const cfg_key *k = config_schema(&n);
    static const char *type_names[] = {"int", "float", "bool", "string", "enum", "float list", "phases"};
    fprintf(f, "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        char allowed[256] = "";
        if (k[i].type == CFG_INT || k[i].type == CFG_FLOAT || k[i].type == CFG_FLOAT_LIST ||
            k[i].type == CFG_PHASES)
            range_text(&k[i], allowed, sizeof allowed);
        else if (k[i].type == CFG_ENUM) {
            /* '|' would end a Markdown table cell. */
            size_t o = 0;
            for (const char *p = k[i].choices; *p && o + 3 < sizeof allowed; p++) {
                if (*p == '|') { allowed[o++] = ','; allowed[o++] = ' '; }
                else allowed[o++] = *p;
            }
            allowed[o] = '\0';
        }
        else if (k[i].type == CFG_BOOL)
            snprintf(allowed, sizeof allowed, "true, false");
        fprintf(f, "| `%s.%s` | %s | `%s` | %s | %s |\n", k[i].section, k[i].key, type_names[k[i].type],
                k[i].def, allowed, k[i].help);
    }
}

char *config_write_string(const dpt_config *c) {
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    DPT_CHECK(m != NULL);
    config_write_stream(c, m);
    fclose(m);
    return text;
}
