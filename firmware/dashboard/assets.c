/* dashboard assets: lookup in the generated table. See assets.h. */
#include "firmware/dashboard/assets.h"

#include <string.h>

const struct dashboard_asset *dashboard_asset_find(const char *path)
{
    if (!path)
        return NULL;
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < dashboard_nassets; i++)
        if (strcmp(dashboard_assets[i].path, path) == 0)
            return &dashboard_assets[i];
    return NULL;
}
