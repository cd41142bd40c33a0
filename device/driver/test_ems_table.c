/* Host-side test of ems_table (run by tests/test_device_driver.py):
 *   test_ems_table BLOB dump      -> loads BLOB, prints every preset's fields and levels as text
 *   test_ems_table BLOB bitflips  -> flips every bit of BLOB in turn, prints the number accepted
 *   test_ems_table BLOB ranges    -> out-of-range requests, prints one line per check
 *   test_ems_table BLOB header    -> compiles ems_presets.h alongside: prints its table too
 * Exit status 0 on success. */
#include <stdio.h>
#include <string.h>

#include "ems_table.h"
#ifdef EMS_WITH_PRESETS_H
#include "ems_presets.h"
#endif

#define MAX_BLOB (EMS_TABLE_HEADER_SIZE + EMS_TABLE_MAX_PRESETS * EMS_TABLE_RECORD_SIZE + EMS_TABLE_TRAILER_SIZE)

static uint8_t blob[MAX_BLOB + 1];
static ems_table_t table;

int main(int argc, char **argv)
{
    FILE *f;
    size_t len, bit;
    uint32_t i, k, current, accepted = 0u;
    int rc;
    if (argc != 3) {
        fprintf(stderr, "usage: %s BLOB dump|bitflips|ranges|header\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL) {
        return 2;
    }
    len = fread(blob, 1, sizeof blob, f);
    fclose(f);
    rc = ems_table_load(blob, len, &table);
    if (rc != 0) {
        printf("load %d\n", rc);
        return 1;
    }
    if (strcmp(argv[2], "dump") == 0) {
        for (i = 0; i < table.count; ++i) {
            const ems_table_preset_t *p = &table.presets[i];
            printf("preset %u waveform %u n_levels %u pulse_width_us %u interphase_gap_us %u frequency_Hz %u "
                   "session_ms %u on_ms %u off_ms %u ramp_ms %u max_rms_current_density_uA_per_cm2 %u "
                   "net_charge_per_pulse_nC %d levels",
                   (unsigned)p->preset_id, (unsigned)p->waveform, (unsigned)p->n_levels, (unsigned)p->pulse_width_us,
                   (unsigned)p->interphase_gap_us, (unsigned)p->frequency_Hz, (unsigned)p->session_ms,
                   (unsigned)p->on_ms, (unsigned)p->off_ms, (unsigned)p->ramp_ms,
                   (unsigned)p->max_rms_current_density_uA_per_cm2, (int)p->net_charge_per_pulse_nC);
            for (k = 1; k <= p->n_levels; ++k) {
                rc = ems_table_level_current_uA(&table, p->preset_id, (uint8_t)k, &current);
                printf(" %u", rc == 0 ? (unsigned)current : 0u);
            }
            printf("\n");
        }
        return 0;
    }
    if (strcmp(argv[2], "bitflips") == 0) {
        for (bit = 0; bit < 8u * len; ++bit) {
            blob[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
            if (ems_table_load(blob, len, &table) == 0) {
                ++accepted;
            }
            blob[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
        }
        printf("flips %lu accepted %u\n", (unsigned long)(8u * len), (unsigned)accepted);
        /* truncated and extended blobs */
        printf("short %d long %d\n", ems_table_load(blob, len - 1u, &table), ems_table_load(blob, len + 1u, &table));
        return accepted == 0u ? 0 : 1;
    }
    if (strcmp(argv[2], "ranges") == 0) {
        const ems_table_preset_t *p = &table.presets[0];
        printf("level0 %d\n", ems_table_level_current_uA(&table, p->preset_id, 0u, &current));
        rc = ems_table_level_current_uA(&table, p->preset_id, (uint8_t)(p->n_levels + 1u), &current);
        printf("above %d current %u\n", rc, (unsigned)current);
        printf("level255 %d\n", ems_table_level_current_uA(&table, p->preset_id, 255u, &current));
        printf("unknown %d\n", ems_table_level_current_uA(&table, 65535u, 1u, &current));
        printf("null %d\n", ems_table_level_current_uA(&table, p->preset_id, 1u, NULL));
        printf("top %d\n", ems_table_level_current_uA(&table, p->preset_id, p->n_levels, &current));
        return 0;
    }
#ifdef EMS_WITH_PRESETS_H
    if (strcmp(argv[2], "header") == 0) {
        for (i = 0; i < EMS_PRESETS_COUNT; ++i) {
            printf("preset %u n_levels %u levels", (unsigned)EMS_PRESETS[i].preset_id, (unsigned)EMS_PRESETS[i].n_levels);
            for (k = 0; k < EMS_PRESETS[i].n_levels; ++k) {
                printf(" %u", (unsigned)EMS_PRESETS[i].levels_uA[k]);
            }
            printf("\n");
        }
        return EMS_PRESETS_FIELD_HASH == EMS_TABLE_FIELD_HASH ? 0 : 1;
    }
#endif
    return 2;
}
