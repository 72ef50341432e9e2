/* Finding the images of an ImageNet-style folder and their labels (see imagenet.c).
 *
 * Folder layout: DIR/<class>/<name>.{JPEG,jpg,jpeg}, any case. Classes are the sorted folder
 * names unless --classes gives the list; a folder that is not in that list is an error, as is
 * a class folder without images. Hidden entries (".x") are skipped; other files and nested
 * folders are ignored with a note.
 *
 * Flat layout: DIR/<name>.JPEG with a labels file of "NAME CLASS" lines:
 *   - fields are separated by white space or commas; tokens after CLASS are ignored (so Kaggle's
 *     LOC_val_solution.csv, "ImageId,PredictionString" with "n01751748 ..." boxes, works);
 *   - NAME is a file in DIR, with or without its extension (a leading path is dropped);
 *   - CLASS is a class name, or an integer index into the class list; integer labels need
 *     --classes (there is no list to index otherwise; the devkit's 1-based ILSVRC2012_ID order is
 *     not the sorted folder order, so guessing would silently mislabel);
 *   - without --classes the classes are the sorted distinct CLASS names of the file;
 *   - line 1 is skipped when its first token names no file (a CSV header); on any other line
 *     that is an error, as is an image without a label or labelled twice. Blank lines are skipped. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/data/h5io.h"
#include "imagenet_internal.h"

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static void strvec_push(strvec *s, const char *x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = dpt_xrealloc(s->v, s->cap * sizeof(char *));
    }
    s->v[s->n++] = dpt_xstrdup(x);
}

static void strvec_free(strvec *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct itemvec {
    prep_item *v;
    size_t n, cap;
} itemvec;

static void item_push(itemvec *iv, const char *dir, const char *name, int label) {
    if (iv->n == iv->cap) {
        iv->cap = iv->cap ? 2 * iv->cap : 1024;
        iv->v = dpt_xrealloc(iv->v, iv->cap * sizeof(prep_item));
    }
    size_t len = strlen(dir) + strlen(name) + 2;
    prep_item *it = &iv->v[iv->n++];
    it->path = dpt_xmalloc(len);
    snprintf(it->path, len, "%s/%s", dir, name);
    it->name = it->path + strlen(dir) + 1;
    it->label = label;
}

static int cmp_item(const void *a, const void *b) {
    const prep_item *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool is_jpeg_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && dot != name && (!strcasecmp(dot + 1, "jpeg") || !strcasecmp(dot + 1, "jpg"));
}

typedef struct ignored {
    size_t n;
    char first[1024];
} ignored;

static void ignore(ignored *ign, const char *dir, const char *name) {
    if (ign->n++ == 0) snprintf(ign->first, sizeof ign->first, "%s/%s", dir, name);
}

/* The sorted subfolders (into dirs; ignored when dirs is NULL) and JPEG files of dir. */
static dpt_status list_dir(const char *dir, strvec *dirs, strvec *files, ignored *ign) {
    DIR *d = opendir(dir);
    if (!d) return dpt_error(DPT_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    char path[PATH_MAX + 256];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        bool is_dir = e->d_type == DT_DIR, is_reg = e->d_type == DT_REG;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            struct stat sb;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (stat(path, &sb) == 0) {
                is_dir = S_ISDIR(sb.st_mode);
                is_reg = S_ISREG(sb.st_mode);
            }
        }
        if (is_dir && dirs) strvec_push(dirs, e->d_name);
        else if (is_reg && is_jpeg_name(e->d_name)) strvec_push(files, e->d_name);
        else ignore(ign, dir, e->d_name);
    }
    closedir(d);
    if (dirs) qsort(dirs->v, dirs->n, sizeof(char *), cmp_str);
    qsort(files->v, files->n, sizeof(char *), cmp_str);
    return DPT_OK;
}

/* ---- class lists ---- */

typedef struct named {
    const char *name;
    int idx;
} named;

static int cmp_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

/* A sorted index of a list of names, for lookups. */
static named *index_names(char *const *names, size_t n) {
    named *ix = dpt_xmalloc((n ? n : 1) * sizeof(named));
    for (size_t i = 0; i < n; i++) ix[i] = (named){names[i], (int)i};
    qsort(ix, n, sizeof(named), cmp_named);
    return ix;
}

static int lookup(const named *ix, size_t n, const char *name) {
    named key = {name, 0};
    const named *hit = bsearch(&key, ix, n, sizeof(named), cmp_named);
    return hit ? hit->idx : -1;
}

static dpt_status read_class_list(const char *path, prep_class_list *cl) {
    h5_quiet();
    if (access(path, R_OK) != 0) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: not an HDF5 file (--classes takes a split written by dptrain prep)",
                         path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return dpt_error(DPT_ERR_FORMAT, "%s: cannot open as HDF5 (damaged?)", path);
    dpt_status st = DPT_OK;
    if (!h5_has_attr(f, "class_names"))
        st = dpt_error(DPT_ERR_FORMAT, "%s: has no class_names attribute, so --classes cannot take its classes", path);
    else
        st = h5_read_attr_strings(f, path, "class_names", &cl->names, &cl->n);
    int64_t nc = cl->n;
    if (st == DPT_OK && h5_has_attr(f, "num_classes")) st = h5_read_attr_i64(f, path, "num_classes", &nc);
    if (st == DPT_OK && nc != cl->n)
        st = dpt_error(DPT_ERR_FORMAT, "%s: num_classes = %lld but class_names has %d entries", path, (long long)nc,
                       cl->n);
    H5Fclose(f);
    if (st == DPT_OK) {
        named *ix = index_names(cl->names, (size_t)cl->n);
        for (int i = 1; st == DPT_OK && i < cl->n; i++)
            if (!strcmp(ix[i].name, ix[i - 1].name))
                st = dpt_error(DPT_ERR_FORMAT, "%s: class_names lists '%s' twice", path, ix[i].name);
        free(ix);
    }
    return st;
}

/* ---- folder layout ---- */

static dpt_status scan_tree(const prep_imagenet_args *a, const char *dir, prep_class_list *cl, itemvec *items,
                            ignored *ign) {
    strvec dirs = {0}, top = {0};
    DPT_TRY(list_dir(dir, &dirs, &top, ign));
    dpt_status st = DPT_OK;
    if (dirs.n == 0 && top.n > 0)
        st = dpt_error(DPT_ERR_FORMAT, "%s: no class folders, only %zu JPEG files; a flat folder needs --labels FILE",
                       dir, top.n);
    else if (dirs.n == 0)
        st = dpt_error(DPT_ERR_FORMAT, "%s: no classes: expected class folders %s/<class>/<image>.JPEG", dir, dir);
    for (size_t i = 0; i < top.n; i++) ignore(ign, dir, top.v[i]);
    if (st == DPT_OK && cl->n == 0) {
        cl->names = dpt_xmalloc(dirs.n * sizeof(char *));
        for (size_t i = 0; i < dirs.n; i++) cl->names[i] = dpt_xstrdup(dirs.v[i]);
        cl->n = (int)dirs.n;
    }
    named *ix = index_names(cl->names, (size_t)cl->n);
    char sub[PATH_MAX];
    for (size_t i = 0; st == DPT_OK && i < dirs.n; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, dirs.v[i]);
        int label = lookup(ix, (size_t)cl->n, dirs.v[i]);
        if (label < 0) {
            st = dpt_error(DPT_ERR_FORMAT, "%s: class '%s' is not one of the %d classes of %s", sub, dirs.v[i], cl->n,
                           a->classes_path);
            break;
        }
        strvec files = {0};
        st = list_dir(sub, NULL, &files, ign);
        if (st == DPT_OK && files.n == 0) st = dpt_error(DPT_ERR_FORMAT, "%s: class folder has no images", sub);
        for (size_t k = 0; st == DPT_OK && k < files.n; k++) item_push(items, sub, files.v[k], label);
        strvec_free(&files);
    }
    free(ix);
    strvec_free(&dirs);
    strvec_free(&top);
    return st;
}

/* ---- flat layout with a labels file ---- */

typedef struct flat {
    const prep_imagenet_args *a;
    const char *dir;
    strvec files;  /* sorted names */
    named *stems;  /* file names without extension, sorted; idx into files */
    int *line;     /* per file: the labels line that labelled it (0: none yet) */
    char **token;  /* per file: its CLASS token */
} flat;

static void flat_free(flat *fl) {
    for (size_t i = 0; i < fl->files.n; i++) {
        free((char *)fl->stems[i].name);
        free(fl->token[i]);
    }
    strvec_free(&fl->files);
    free(fl->stems);
    free(fl->line);
    free(fl->token);
}

/* The file a NAME token means: an exact name, else a unique stem. -1: none; -2: two files have
 * that stem (*amb1, *amb2). */
static int find_file(const flat *fl, const char *name, int *amb1, int *amb2) {
    const char *slash = strrchr(name, '/');
    if (slash) name = slash + 1;
    const char *key = name;
    char **hit = bsearch(&key, fl->files.v, fl->files.n, sizeof(char *), cmp_str);
    if (hit) return (int)(hit - fl->files.v);
    named nk = {name, 0};
    const named *s = bsearch(&nk, fl->stems, fl->files.n, sizeof(named), cmp_named), *end = fl->stems + fl->files.n;
    if (!s) return -1;
    const named *twin = s > fl->stems && !strcmp(s[-1].name, name) ? s - 1
                        : s + 1 < end && !strcmp(s[1].name, name) ? s + 1
                                                                   : NULL;
    if (!twin) return s->idx;
    *amb1 = DPT_MIN(s->idx, twin->idx);
    *amb2 = DPT_MAX(s->idx, twin->idx);
    return -2;
}

static bool parse_index(const char *tok, long long *v) {
    char *end = NULL;
    errno = 0;
    *v = strtoll(tok, &end, 10);
    return end != tok && *end == '\0' && errno == 0;
}

/* Reads the labels file: one CLASS token per image of the folder. */
static dpt_status read_labels_file(flat *fl) {
    const char *lp = fl->a->labels_path;
    FILE *f = fopen(lp, "rb");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot open labels file: %s", lp, strerror(errno));
    dpt_status st = DPT_OK;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    while (st == DPT_OK && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *text = lineno == 1 && !strncmp(line, "\xEF\xBB\xBF", 3) ? line + 3 : line; /* UTF-8 BOM */
        char *save = NULL, *name = strtok_r(text, " \t\r\n,", &save);
        if (!name) continue;
        char *cls = strtok_r(NULL, " \t\r\n,", &save);
        int amb1 = 0, amb2 = 0, idx = find_file(fl, name, &amb1, &amb2);
        if (idx == -1 && lineno == 1) continue; /* a header */
        if (idx == -1)
            st = dpt_error(DPT_ERR_FORMAT, "%s:%d: no image '%s' in %s", lp, lineno, name, fl->dir);
        else if (idx == -2)
            st = dpt_error(DPT_ERR_FORMAT, "%s:%d: '%s' could mean %s or %s", lp, lineno, name, fl->files.v[amb1],
                           fl->files.v[amb2]);
        else if (!cls)
            st = dpt_error(DPT_ERR_FORMAT, "%s:%d: no class after '%s'", lp, lineno, name);
        else if (fl->line[idx])
            st = dpt_error(DPT_ERR_FORMAT, "%s:%d: %s is labelled twice (also on line %d)", lp, lineno,
                           fl->files.v[idx], fl->line[idx]);
        else {
            fl->line[idx] = lineno;
            fl->token[idx] = dpt_xstrdup(cls);
        }
    }
    if (st == DPT_OK && ferror(f)) st = dpt_error(DPT_ERR_IO, "%s: read error", lp);
    free(line);
    fclose(f);
    size_t missing = 0, first = 0;
    for (size_t i = 0; st == DPT_OK && i < fl->files.n; i++)
        if (!fl->line[i] && missing++ == 0) first = i;
    if (st == DPT_OK && missing)
        st = dpt_error(DPT_ERR_FORMAT, "%s: no label for %s/%s (%zu of the %zu images in %s have none)", lp, fl->dir,
                       fl->files.v[first], missing, fl->files.n, fl->dir);
    return st;
}

static dpt_status scan_flat(const prep_imagenet_args *a, const char *dir, prep_class_list *cl, itemvec *items,
                            ignored *ign) {
    flat fl = {.a = a, .dir = dir};
    DPT_TRY(list_dir(dir, NULL, &fl.files, ign));
    size_t n = fl.files.n;
    fl.stems = dpt_xmalloc((n ? n : 1) * sizeof(named));
    fl.line = dpt_xcalloc(n ? n : 1, sizeof(int));
    fl.token = dpt_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        char *stem = dpt_xstrdup(fl.files.v[i]);
        *strrchr(stem, '.') = '\0';
        fl.stems[i] = (named){stem, (int)i};
    }
    qsort(fl.stems, n, sizeof(named), cmp_named);
    const char *lp = a->labels_path;
    dpt_status st = DPT_OK;
    if (n == 0) st = dpt_error(DPT_ERR_FORMAT, "%s: no JPEG images in the folder (flat layout with --labels)", dir);
    if (st == DPT_OK) st = read_labels_file(&fl);
    if (st == DPT_OK && cl->n == 0) {
        /* The classes are the distinct names in the labels file. */
        strvec names = {0};
        size_t first_int = n;
        for (size_t i = 0; i < n; i++) {
            long long v;
            if (!parse_index(fl.token[i], &v)) strvec_push(&names, fl.token[i]);
            else if (first_int == n || fl.line[i] < fl.line[first_int]) first_int = i;
        }
        if (first_int < n)
            st = dpt_error(DPT_ERR_FORMAT, "%s:%d: class '%s' is a number; integer labels need --classes TRAIN.h5 to "
                                           "say which class each index is",
                           lp, fl.line[first_int], fl.token[first_int]);
        qsort(names.v, names.n, sizeof(char *), cmp_str);
        cl->names = dpt_xmalloc((names.n ? names.n : 1) * sizeof(char *));
        for (size_t i = 0; i < names.n; i++)
            if (i == 0 || strcmp(names.v[i], names.v[i - 1])) cl->names[cl->n++] = dpt_xstrdup(names.v[i]);
        strvec_free(&names);
    }
    named *ix = index_names(cl->names, (size_t)cl->n);
    for (size_t i = 0; st == DPT_OK && i < n; i++) {
        const char *tok = fl.token[i];
        int label = lookup(ix, (size_t)cl->n, tok);
        long long v;
        if (label < 0 && parse_index(tok, &v)) {
            if (v < 0 || v >= cl->n)
                st = dpt_error(DPT_ERR_FORMAT, "%s:%d: class index %lld is out of range [0, %d]", lp, fl.line[i], v,
                               cl->n - 1);
            label = (int)v;
        } else if (label >= 0) {
            /* a class name */
        } else if ((tok[0] >= '0' && tok[0] <= '9') || tok[0] == '-' || tok[0] == '+') {
            st = dpt_error(DPT_ERR_FORMAT, "%s:%d: bad class index '%s'", lp, fl.line[i], tok);
        } else {
            st = dpt_error(DPT_ERR_FORMAT, "%s:%d: unknown class '%s' (not one of the %d classes of %s)", lp,
                           fl.line[i], tok, cl->n, a->classes_path ? a->classes_path : lp);
        }
        if (st == DPT_OK) item_push(items, dir, fl.files.v[i], label);
    }
    free(ix);
    flat_free(&fl);
    return st;
}

dpt_status prep_list_images(const prep_imagenet_args *a, prep_class_list *cl, prep_item **items_out, int64_t *n_out) {
    memset(cl, 0, sizeof *cl);
    /* DIR without trailing slashes, so that paths in messages read DIR/n01/x.JPEG. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", a->dir);
    for (size_t l = strlen(dir); l > 1 && dir[l - 1] == '/'; l--) dir[l - 1] = '\0';
    dpt_status st = DPT_OK;
    if (a->classes_path) st = read_class_list(a->classes_path, cl);
    itemvec items = {0};
    ignored ign = {0};
    if (st == DPT_OK) st = a->labels_path ? scan_flat(a, dir, cl, &items, &ign) : scan_tree(a, dir, cl, &items, &ign);
    if (st == DPT_OK && items.n == 0) st = dpt_error(DPT_ERR_FORMAT, "%s: no images", dir);
    if (st != DPT_OK) {
        prep_free_items(items.v, (int64_t)items.n);
        prep_free_classes(cl);
        return st;
    }
    if (ign.n)
        fprintf(stderr, "prep: note: ignored %zu %s (first: %s)\n", ign.n,
                ign.n == 1 ? "entry that is not a JPEG file" : "entries that are not JPEG files", ign.first);
    qsort(items.v, items.n, sizeof(prep_item), cmp_item);
    *items_out = items.v;
    *n_out = (int64_t)items.n;
    return DPT_OK;
}

void prep_free_items(prep_item *items, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(items[i].path);
    free(items);
}

void prep_free_classes(prep_class_list *cl) {
    h5_free_strings(cl->names, cl->n);
    memset(cl, 0, sizeof *cl);
}
