/* Shared by the ImageNet importer's two halves: imagenet_list.c finds the images and their
 * labels, imagenet.c converts and writes them. */
#ifndef DPT_PREP_IMAGENET_INTERNAL_H
#define DPT_PREP_IMAGENET_INTERNAL_H

#include "dpt/data/prep.h"

typedef struct prep_item {
    char *path;       /* DIR/<class>/<name> or DIR/<name> */
    const char *name; /* the file name, inside path */
    int label;
} prep_item;

typedef struct prep_class_list {
    char **names;
    int n;
} prep_class_list;

/* The class list (from --classes, else the folder names, else the labels file's classes) and
 * every image with its label, sorted by (label, name). Errors name the folder, file or labels
 * file line. */
dpt_status prep_list_images(const prep_imagenet_args *a, prep_class_list *cl, prep_item **items, int64_t *n);
void prep_free_items(prep_item *items, int64_t n);
void prep_free_classes(prep_class_list *cl);

#endif
