/* ems_table.h: load and query the preset table exported by `emsim export` (ems_presets.bin).
 *
 * C99, no dynamic allocation. The blob is little-endian: magic "EMSP", u16 schema version,
 * u16 zero, u32 field-list hash, u32 record count, count x EMS_TABLE_RECORD_SIZE bytes of records,
 * u32 CRC-32 (IEEE 802.3, as zlib.crc32) of every byte before it. A table that loads holds only
 * the levels validation showed safe; ems_table_level_current_uA never yields anything else.
 *
 * The CRC proves integrity, not sense: a blob built by hand with a recomputed CRC passes it. So
 * every record is also bounded by the device's physical limits below (compile-time; a firmware
 * defines its own before including this header, or with -D): level current, pulse width,
 * frequency, and the pulse fitting in its period. A record beyond them fails with
 * EMS_TABLE_E_RANGE and nothing loads. The defaults are emsim's own input ranges
 * (emsim.device.presets: LEVEL_RANGE_uA, PULSE_WIDTH_RANGE_us, FREQUENCY_RANGE_Hz).
 */
#ifndef EMS_TABLE_H
#define EMS_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define EMS_TABLE_SCHEMA_VERSION 1u
/* CRC-32 of the field list (emsim.device.export.FIELD_LIST): the record layout this code reads. */
#define EMS_TABLE_FIELD_HASH 0xF3576620u
#define EMS_TABLE_MAX_LEVELS 16u
#define EMS_TABLE_MAX_PRESETS 32u
#define EMS_TABLE_HEADER_SIZE 16u
#define EMS_TABLE_RECORD_SIZE 140u
#define EMS_TABLE_TRAILER_SIZE 4u

/* Device limits (inclusive). Level current: 100 mA is the largest r.m.s. output IEC 60601-2-10
 * allows at any frequency; 10 uA is below any stimulator level (a table in mA is caught). Pulse
 * width: 50 us is the shortest phase whose spectrum (to 500 / width) stays within the 10 MHz
 * band emsim's electro-quasi-static models hold over. A device whose output stage is smaller
 * lowers these. */
#ifndef EMS_DEVICE_MIN_LEVEL_uA
#define EMS_DEVICE_MIN_LEVEL_uA 10u
#endif
#ifndef EMS_DEVICE_MAX_LEVEL_uA
#define EMS_DEVICE_MAX_LEVEL_uA 100000u
#endif
#ifndef EMS_DEVICE_MIN_PULSE_WIDTH_us
#define EMS_DEVICE_MIN_PULSE_WIDTH_us 50u
#endif
#ifndef EMS_DEVICE_MAX_PULSE_WIDTH_us
#define EMS_DEVICE_MAX_PULSE_WIDTH_us 10000u
#endif
#ifndef EMS_DEVICE_MIN_FREQUENCY_Hz
#define EMS_DEVICE_MIN_FREQUENCY_Hz 1u
#endif
#ifndef EMS_DEVICE_MAX_FREQUENCY_Hz
#define EMS_DEVICE_MAX_FREQUENCY_Hz 10000u
#endif

/* Errors (all negative). */
#define EMS_TABLE_OK 0
#define EMS_TABLE_E_ARG (-1)        /* NULL pointer */
#define EMS_TABLE_E_SIZE (-2)       /* length does not match the record count */
#define EMS_TABLE_E_MAGIC (-3)
#define EMS_TABLE_E_VERSION (-4)
#define EMS_TABLE_E_FIELDS (-5)     /* field-list hash differs: another record layout */
#define EMS_TABLE_E_CRC (-6)
#define EMS_TABLE_E_RECORD (-7)     /* a record breaks an invariant (levels, counts, ids) */
#define EMS_TABLE_E_PRESET (-8)     /* unknown preset id */
#define EMS_TABLE_E_LEVEL (-9)      /* level 0 or above the preset's safe maximum */
#define EMS_TABLE_E_RANGE (-10)     /* a record beyond the device limits (EMS_DEVICE_*) */

typedef struct ems_table_preset {
    uint16_t preset_id;
    uint8_t waveform; /* 1 biphasic_symmetric, 2 biphasic_asymmetric, 3 monophasic */
    uint8_t n_levels; /* safe levels, 1..EMS_TABLE_MAX_LEVELS */
    uint32_t pulse_width_us;
    uint32_t interphase_gap_us;
    uint32_t frequency_Hz;
    uint32_t session_ms;
    uint32_t on_ms;
    uint32_t off_ms;
    uint32_t ramp_ms;
    uint32_t levels_uA[EMS_TABLE_MAX_LEVELS];
    uint32_t max_voltage_500ohm_mV;
    uint32_t max_voltage_2kohm_mV;
    uint32_t max_voltage_10kohm_mV;
    uint32_t max_current_500ohm_uA;
    uint32_t max_current_2kohm_uA;
    uint32_t max_current_10kohm_uA;
    int32_t net_charge_per_pulse_nC;
    uint32_t max_phase_charge_500ohm_nC;
    uint32_t max_rms_current_density_uA_per_cm2;
    uint32_t max_average_current_uA;
    uint32_t max_average_power_density_uW_per_cm2;
} ems_table_preset_t;

typedef struct ems_table {
    uint32_t count;
    ems_table_preset_t presets[EMS_TABLE_MAX_PRESETS];
} ems_table_t;

/* Checks the whole blob (size, magic, version, field hash, CRC, record invariants, device limits) and fills
 * *table. Returns 0, or a negative EMS_TABLE_E_* error; on error *table is left empty. */
int ems_table_load(const uint8_t *blob, size_t len, ems_table_t *table);

/* The current of a level (from 1) of a preset. Returns 0, or EMS_TABLE_E_PRESET for an unknown
 * preset, EMS_TABLE_E_LEVEL for level 0 or a level beyond the safe maximum (*current_uA is then
 * left 0 when current_uA is not NULL). */
int ems_table_level_current_uA(const ems_table_t *table, uint16_t preset_id, uint8_t level, uint32_t *current_uA);

/* CRC-32 (IEEE 802.3, reflected, init and final xor 0xFFFFFFFF): zlib.crc32. */
uint32_t ems_table_crc32(const uint8_t *data, size_t len);

#endif /* EMS_TABLE_H */
