/* ems_table.c: see ems_table.h. C99, no dynamic allocation, no library calls beyond <stddef.h>. */
#include "ems_table.h"

uint32_t ems_table_crc32(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    int bit;
    for (i = 0; i < len; ++i) {
        crc ^= (uint32_t)data[i];
        for (bit = 0; bit < 8; ++bit) {
            crc = (crc & 1u) ? (crc >> 1) ^ 0xEDB88320u : (crc >> 1);
        }
    }
    return crc ^ 0xFFFFFFFFu;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)((uint16_t)p[0] | ((uint16_t)p[1] << 8)); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void clear(ems_table_t *table)
{
    uint8_t *p = (uint8_t *)table;
    size_t i;
    for (i = 0; i < sizeof *table; ++i) {
        p[i] = 0u;
    }
}

/* The record's physical values within the device limits (levels are increasing: the first and the
 * last bound them all), and its pulse (both phases and the gap of a biphasic pulse; the second
 * phase of an asymmetric one is not in the record) within one period 1e6 / frequency_Hz us. */
static int in_device_limits(const ems_table_preset_t *p)
{
    uint64_t pulse_us = (uint64_t)p->pulse_width_us;
    if (p->levels_uA[0] < EMS_DEVICE_MIN_LEVEL_uA || p->levels_uA[p->n_levels - 1u] > EMS_DEVICE_MAX_LEVEL_uA ||
        p->pulse_width_us < EMS_DEVICE_MIN_PULSE_WIDTH_us || p->pulse_width_us > EMS_DEVICE_MAX_PULSE_WIDTH_us ||
        p->frequency_Hz < EMS_DEVICE_MIN_FREQUENCY_Hz || p->frequency_Hz > EMS_DEVICE_MAX_FREQUENCY_Hz) {
        return 0;
    }
    if (p->waveform == 1u) {
        pulse_us = 2u * pulse_us + p->interphase_gap_us;
    } else if (p->waveform == 2u) {
        pulse_us = pulse_us + p->interphase_gap_us;
    }
    return pulse_us * (uint64_t)p->frequency_Hz <= 1000000u;
}

static int decode(const uint8_t *r, ems_table_preset_t *out)
{
    size_t k;
    uint32_t *dst[] = {&out->pulse_width_us, &out->interphase_gap_us, &out->frequency_Hz, &out->session_ms,
                       &out->on_ms, &out->off_ms, &out->ramp_ms};
    uint32_t *tail[] = {&out->max_voltage_500ohm_mV, &out->max_voltage_2kohm_mV, &out->max_voltage_10kohm_mV,
                        &out->max_current_500ohm_uA, &out->max_current_2kohm_uA, &out->max_current_10kohm_uA};
    out->preset_id = rd16(r);
    out->waveform = r[2];
    out->n_levels = r[3];
    r += 4;
    for (k = 0; k < 7u; ++k, r += 4) {
        *dst[k] = rd32(r);
    }
    for (k = 0; k < EMS_TABLE_MAX_LEVELS; ++k, r += 4) {
        out->levels_uA[k] = rd32(r);
    }
    for (k = 0; k < 6u; ++k, r += 4) {
        *tail[k] = rd32(r);
    }
    out->net_charge_per_pulse_nC = (int32_t)rd32(r);
    r += 4;
    out->max_phase_charge_500ohm_nC = rd32(r);
    out->max_rms_current_density_uA_per_cm2 = rd32(r + 4);
    out->max_average_current_uA = rd32(r + 8);
    out->max_average_power_density_uW_per_cm2 = rd32(r + 12);
    /* invariants: known waveform, 1..MAX safe levels strictly increasing, unused levels zero */
    if (out->preset_id == 0u || out->waveform < 1u || out->waveform > 3u || out->n_levels < 1u ||
        out->n_levels > EMS_TABLE_MAX_LEVELS || out->frequency_Hz == 0u || out->pulse_width_us == 0u) {
        return EMS_TABLE_E_RECORD;
    }
    for (k = 0; k < EMS_TABLE_MAX_LEVELS; ++k) {
        if (k < out->n_levels) {
            if (out->levels_uA[k] == 0u || (k > 0u && out->levels_uA[k] <= out->levels_uA[k - 1u])) {
                return EMS_TABLE_E_RECORD;
            }
        } else if (out->levels_uA[k] != 0u) {
            return EMS_TABLE_E_RECORD;
        }
    }
    return in_device_limits(out) ? EMS_TABLE_OK : EMS_TABLE_E_RANGE;
}

int ems_table_load(const uint8_t *blob, size_t len, ems_table_t *table)
{
    uint32_t count, i, j;
    int rc;
    if (table == NULL) {
        return EMS_TABLE_E_ARG;
    }
    clear(table);
    if (blob == NULL) {
        return EMS_TABLE_E_ARG;
    }
    if (len < EMS_TABLE_HEADER_SIZE + EMS_TABLE_TRAILER_SIZE) {
        return EMS_TABLE_E_SIZE;
    }
    if (blob[0] != 'E' || blob[1] != 'M' || blob[2] != 'S' || blob[3] != 'P') {
        return EMS_TABLE_E_MAGIC;
    }
    if (rd16(blob + 4) != EMS_TABLE_SCHEMA_VERSION || rd16(blob + 6) != 0u) {
        return EMS_TABLE_E_VERSION;
    }
    if (rd32(blob + 8) != EMS_TABLE_FIELD_HASH) {
        return EMS_TABLE_E_FIELDS;
    }
    count = rd32(blob + 12);
    if (count == 0u || count > EMS_TABLE_MAX_PRESETS ||
        len != (size_t)EMS_TABLE_HEADER_SIZE + (size_t)count * EMS_TABLE_RECORD_SIZE + EMS_TABLE_TRAILER_SIZE) {
        return EMS_TABLE_E_SIZE;
    }
    if (ems_table_crc32(blob, len - EMS_TABLE_TRAILER_SIZE) != rd32(blob + len - EMS_TABLE_TRAILER_SIZE)) {
        return EMS_TABLE_E_CRC;
    }
    for (i = 0; i < count; ++i) {
        rc = decode(blob + EMS_TABLE_HEADER_SIZE + (size_t)i * EMS_TABLE_RECORD_SIZE, &table->presets[i]);
        for (j = 0; rc == EMS_TABLE_OK && j < i; ++j) {
            if (table->presets[j].preset_id == table->presets[i].preset_id) {
                rc = EMS_TABLE_E_RECORD;
            }
        }
        if (rc != EMS_TABLE_OK) {
            clear(table);
            return rc;
        }
    }
    table->count = count;
    return EMS_TABLE_OK;
}

int ems_table_level_current_uA(const ems_table_t *table, uint16_t preset_id, uint8_t level, uint32_t *current_uA)
{
    uint32_t i;
    if (current_uA != NULL) {
        *current_uA = 0u;
    }
    if (table == NULL || current_uA == NULL) {
        return EMS_TABLE_E_ARG;
    }
    for (i = 0; i < table->count && i < EMS_TABLE_MAX_PRESETS; ++i) {
        const ems_table_preset_t *p = &table->presets[i];
        if (p->preset_id == preset_id) {
            if (level < 1u || level > p->n_levels || p->n_levels > EMS_TABLE_MAX_LEVELS) {
                return EMS_TABLE_E_LEVEL;
            }
            *current_uA = p->levels_uA[level - 1u];
            return EMS_TABLE_OK;
        }
    }
    return EMS_TABLE_E_PRESET;
}
