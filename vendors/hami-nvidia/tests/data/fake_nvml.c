/*
 * A tiny stand-in for libnvidia-ml.so.1, for tests: just the NVML symbols hami_nvidia.binding
 * reaches through nvidia-ml-py, with NVML's C signatures and struct layouts (nvml.h).
 *
 * The node it describes:
 *   GPU 0  NVIDIA A100-SXM4-40GB  40 GiB  bus 00000000:07:00.0  2 NVLinks to GPU 1
 *   GPU 1  NVIDIA A100-SXM4-40GB  40 GiB  bus 00000000:0F:00.0  2 NVLinks to GPU 0
 *   GPU 2  NVIDIA GB10            memory NOT_SUPPORTED, MIG mode NOT_SUPPORTED
 * GPUs 0 and 1 share a PCIe switch (NVML_TOPOLOGY_SINGLE); GPU 2 is across the CPUs.
 * Pending events, delivered again to every new event set (a card that keeps failing):
 * XID 13 on GPU 0 (an application error) and XID 79 on GPU 1 (fell off the bus).
 *
 * Build: cc -shared -fPIC -o libnvidia-ml.so.1 fake_nvml.c
 */
#include <stdio.h>
#include <string.h>

typedef int nvmlReturn_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_TIMEOUT 10

typedef struct nvmlDevice_st { unsigned int index; } *nvmlDevice_t;
typedef struct nvmlEventSet_st { unsigned long long types[3]; } *nvmlEventSet_t;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

#define NGPU 3
#define XID_CRITICAL 8ULL

static int initialised;
static struct nvmlDevice_st devices[NGPU] = {{0}, {1}, {2}};
static struct nvmlEventSet_st event_set;
static int next_event;
static const char *names[NGPU] = {"NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", "NVIDIA GB10"};
static const char *uuids[NGPU] = {
    "GPU-6a1b0c6e-0000-4000-8000-00000000a100",
    "GPU-6a1b0c6e-0001-4000-8000-00000000a100",
    "GPU-6a1b0c6e-0002-4000-8000-0000000000b1",
};
static const unsigned int buses[NGPU] = {0x07, 0x0F, 0x41};
static const struct { unsigned int gpu; unsigned long long xid; } events[] = {{0, 13}, {1, 79}};

static int bad(nvmlDevice_t d) { return !initialised || d == NULL || d->index >= NGPU; }

static nvmlReturn_t copy(char *out, unsigned int size, const char *text) {
    if (strlen(text) + 1 > size) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, text);
    return NVML_SUCCESS;
}

static void bus_id(unsigned int bus, char *out) { sprintf(out, "00000000:%02X:00.0", bus); }

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; initialised = 1; return NVML_SUCCESS; }
nvmlReturn_t nvmlInit_v2(void) { initialised = 1; return NVML_SUCCESS; }
nvmlReturn_t nvmlShutdown(void) { initialised = 0; return NVML_SUCCESS; }

const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    return copy(version, length, "550.00-fake");
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    *count = NGPU;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (index >= NGPU) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *index) {
    if (bad(d)) return NVML_ERROR_INVALID_ARGUMENT;
    *index = d->index;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
    if (bad(d)) return NVML_ERROR_INVALID_ARGUMENT;
    return copy(uuid, length, uuids[d->index]);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
    if (bad(d)) return NVML_ERROR_INVALID_ARGUMENT;
    return copy(name, length, names[d->index]);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *memory) {
    if (bad(d)) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->index == 2) return NVML_ERROR_NOT_SUPPORTED;
    memory->total = 40ULL * 1024 * 1024 * 1024;
    memory->used = 512ULL * 1024 * 1024;
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci) {
    if (bad(d)) return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof(*pci));
    pci->bus = buses[d->index];
    pci->pciDeviceId = 0x20B010DE;
    sprintf(pci->busIdLegacy, "0000:%02X:00.0", buses[d->index]);
    bus_id(buses[d->index], pci->busId);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *current, unsigned int *pending) {
    if (bad(d)) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->index == 2) return NVML_ERROR_NOT_SUPPORTED;
    *current = 0;
    *pending = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b, int *level) {
    if (bad(a) || bad(b)) return NVML_ERROR_INVALID_ARGUMENT;
    *level = (a->index < 2 && b->index < 2) ? 10 /* SINGLE */ : 50 /* SYSTEM */;
    return NVML_SUCCESS;
}

/* GPUs 0 and 1 have links 0 and 1 enabled, each to the other; GPU 2 has no NVLink. */
nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t d, unsigned int link, unsigned int *active) {
    if (bad(d)) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->index == 2) return NVML_ERROR_NOT_SUPPORTED;
    if (link >= 12) return NVML_ERROR_INVALID_ARGUMENT;
    *active = link < 2;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t d, unsigned int link,
                                                 nvmlPciInfo_t *pci) {
    if (bad(d) || d->index == 2 || link >= 2) return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof(*pci));
    bus_id(buses[1 - d->index], pci->busId);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t d, unsigned int link, int *type) {
    if (bad(d) || d->index == 2 || link >= 2) return NVML_ERROR_INVALID_ARGUMENT;
    *type = 0; /* NVML_NVLINK_DEVICE_TYPE_GPU */
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    memset(&event_set, 0, sizeof(event_set));
    next_event = 0;
    *set = &event_set;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set) {
    if (bad(d) || set != &event_set) return NVML_ERROR_INVALID_ARGUMENT;
    set->types[d->index] |= types;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
    (void)timeoutms;
    if (!initialised || set != &event_set) return NVML_ERROR_INVALID_ARGUMENT;
    while (next_event < (int)(sizeof(events) / sizeof(events[0]))) {
        unsigned int gpu = events[next_event].gpu;
        unsigned long long xid = events[next_event].xid;
        next_event++;
        if (!(set->types[gpu] & XID_CRITICAL)) continue;
        memset(data, 0, sizeof(*data));
        data->device = &devices[gpu];
        data->eventType = XID_CRITICAL;
        data->eventData = xid;
        return NVML_SUCCESS;
    }
    return NVML_ERROR_TIMEOUT;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
    if (set != &event_set) return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}
