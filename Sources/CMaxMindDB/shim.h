#include <maxminddb.h>
#include <string.h>

/* What Vantage reads from a GeoIP2/GeoLite2 City or Country database for one address. MMDB_get_value is variadic,
   which Swift cannot call, so the lookup and the copies happen here. */
typedef struct {
    char country[8];
    char region[128];
    char city[128];
    double latitude;
    double longitude;
    int has_location;
} vantage_geo_result;

static inline void vantage_geo_copy(MMDB_entry_s *entry, char *out, size_t size, const char *a, const char *b,
                                    const char *c, const char *d) {
    MMDB_entry_data_s data;
    out[0] = 0;
    int status = d ? MMDB_get_value(entry, &data, a, b, c, d, NULL)
                   : (c ? MMDB_get_value(entry, &data, a, b, c, NULL) : MMDB_get_value(entry, &data, a, b, NULL));
    if (status != MMDB_SUCCESS || !data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING) return;
    size_t length = data.data_size < size - 1 ? data.data_size : size - 1;
    memcpy(out, data.utf8_string, length);
    out[length] = 0;
}

/* 1: found, 0: not in the database, -1: not an address, -2: database error. */
static inline int vantage_geo_lookup(const MMDB_s *db, const char *address, vantage_geo_result *out) {
    int gai_error = 0, mmdb_error = 0;
    MMDB_lookup_result_s result = MMDB_lookup_string(db, address, &gai_error, &mmdb_error);
    if (gai_error != 0) return -1;
    if (mmdb_error != MMDB_SUCCESS) return -2;
    if (!result.found_entry) return 0;
    vantage_geo_copy(&result.entry, out->country, sizeof out->country, "country", "iso_code", NULL, NULL);
    vantage_geo_copy(&result.entry, out->region, sizeof out->region, "subdivisions", "0", "names", "en");
    vantage_geo_copy(&result.entry, out->city, sizeof out->city, "city", "names", "en", NULL);
    MMDB_entry_data_s latitude, longitude;
    out->has_location = 0;
    if (MMDB_get_value(&result.entry, &latitude, "location", "latitude", NULL) == MMDB_SUCCESS && latitude.has_data
        && MMDB_get_value(&result.entry, &longitude, "location", "longitude", NULL) == MMDB_SUCCESS
        && longitude.has_data && latitude.type == MMDB_DATA_TYPE_DOUBLE && longitude.type == MMDB_DATA_TYPE_DOUBLE) {
        out->latitude = latitude.double_value;
        out->longitude = longitude.double_value;
        out->has_location = 1;
    }
    return 1;
}
