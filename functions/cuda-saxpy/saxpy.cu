/* functions/cuda-saxpy: a native CUDA box. Reads "N [A]" from stdin (N
 * elements, 1 to 16777216, default 1048576; A a float, default 2), fills x
 * and y with known values, runs y = A*x + y on the GPU (one fused
 * multiply-add per element), checks every element against the same
 * computation on the CPU (fmaf: both round once, so they must agree to the
 * bit) and prints one JSON line with the device's name, the kernel's time,
 * a checksum and the mismatch count. Exit status: 0 all agree, 1 a
 * mismatch, 2 bad input, 3 a CUDA error (its name and text on stderr).
 *
 * Built with nvcc by this folder's Makefile. The same file compiles
 * without nvcc (g++ -x c++) into the CPU reference alone, which reports
 * "device": "none" and is what `make check-cpu` tests on a machine with no
 * CUDA toolkit. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __CUDACC__
#include <cuda_runtime.h>
#endif

#define N_MAX (1u << 24)       /* 64 MiB per array, on the host and on the device */
#define N_DEFAULT (1u << 20)
#define INPUT_MAX 256

enum { EXIT_MISMATCH = 1, EXIT_USAGE = 2, EXIT_CUDA = 3 };

/* The inputs, the same on every run: exact in float32 (quarters and
 * halves of small integers). */
static float x_at(uint32_t i) {
        return (float) (i % 1000u) * 0.25f - 100.0f;
}

static float y_at(uint32_t i) {
        return (float) (i % 77u) * 0.5f;
}

/* "N" or "N A" with blanks around; N in 1..N_MAX, A finite. */
static int parse_input(const char *s, uint32_t *ret_n, float *ret_a) {
        char *end;
        unsigned long n = N_DEFAULT;
        float a = 2.0f;

        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                s++;
        if (*s) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                errno = 0;
                n = strtoul(s, &end, 10);
                if (errno || n < 1 || n > N_MAX)
                        return -ERANGE;
                s = end;
                while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                        s++;
                if (*s) {
                        errno = 0;
                        a = strtof(s, &end);
                        if (end == s || errno || !isfinite(a))
                                return -EINVAL;
                        s = end;
                        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                                s++;
                        if (*s)
                                return -EINVAL;
                }
        }
        *ret_n = (uint32_t) n;
        *ret_a = a;
        return 0;
}

static void saxpy_cpu(uint32_t n, float a, const float *x, float *y) {
        for (uint32_t i = 0; i < n; i++)
                y[i] = fmaf(a, x[i], y[i]);
}

#ifdef __CUDACC__
/* One thread per element, a grid-stride loop for grids smaller than n.
 * __fmaf_rn: one rounding, as fmaf on the CPU. */
static __global__ void saxpy_kernel(uint32_t n, float a, const float *x, float *y) {
        for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
                y[i] = __fmaf_rn(a, x[i], y[i]);
}

/* Logs a failed CUDA call with its error's name and text; returns it. */
static cudaError_t cuda_log(cudaError_t e, const char *what) {
        if (e != cudaSuccess)
                fprintf(stderr, "cuda-saxpy: %s: %s (%s)\n", what, cudaGetErrorString(e), cudaGetErrorName(e));
        return e;
}
#define CUDA_TRY(call)                                          \
        do {                                                    \
                if (cuda_log((call), #call) != cudaSuccess)     \
                        goto out;                               \
        } while (0)

typedef struct {
        char name[256];
        int major, minor;
        size_t memory;
        float kernel_ms;
} GpuRun;

/* y = a*x + y on device 0 (the first the jail lets it see). Returns 0, or
 * -1 after logging the failed call. */
static int saxpy_gpu(uint32_t n, float a, const float *x, float *y, GpuRun *ret) {
        float *dx = NULL, *dy = NULL;
        cudaEvent_t start = NULL, stop = NULL;
        cudaDeviceProp prop;
        size_t bytes = (size_t) n * sizeof(float);
        int count = 0, r = -1;

        CUDA_TRY(cudaGetDeviceCount(&count));
        if (count < 1) {
                fprintf(stderr, "cuda-saxpy: no CUDA device visible (CUDA_VISIBLE_DEVICES=%s)\n",
                        getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "(unset)");
                return -1;
        }
        CUDA_TRY(cudaSetDevice(0));
        CUDA_TRY(cudaGetDeviceProperties(&prop, 0));
        snprintf(ret->name, sizeof ret->name, "%s", prop.name);
        ret->major = prop.major;
        ret->minor = prop.minor;
        ret->memory = prop.totalGlobalMem;

        CUDA_TRY(cudaMalloc((void **) &dx, bytes));
        CUDA_TRY(cudaMalloc((void **) &dy, bytes));
        CUDA_TRY(cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice));
        CUDA_TRY(cudaMemcpy(dy, y, bytes, cudaMemcpyHostToDevice));
        CUDA_TRY(cudaEventCreate(&start));
        CUDA_TRY(cudaEventCreate(&stop));

        {
                const unsigned threads = 256;
                unsigned blocks = (n + threads - 1) / threads;
                if (blocks > 65535)
                        blocks = 65535;
                CUDA_TRY(cudaEventRecord(start, 0));
                saxpy_kernel<<<blocks, threads>>>(n, a, dx, dy);
                CUDA_TRY(cudaGetLastError());             /* a bad launch configuration */
                CUDA_TRY(cudaEventRecord(stop, 0));
                CUDA_TRY(cudaEventSynchronize(stop));     /* and a fault while it ran */
                CUDA_TRY(cudaEventElapsedTime(&ret->kernel_ms, start, stop));
        }
        CUDA_TRY(cudaMemcpy(y, dy, bytes, cudaMemcpyDeviceToHost));
        r = 0;
out:
        if (start)
                cuda_log(cudaEventDestroy(start), "cudaEventDestroy(start)");
        if (stop)
                cuda_log(cudaEventDestroy(stop), "cudaEventDestroy(stop)");
        if (dx)
                cuda_log(cudaFree(dx), "cudaFree(dx)");
        if (dy)
                cuda_log(cudaFree(dy), "cudaFree(dy)");
        return r;
}
#endif

int main(void) {
        char buf[INPUT_MAX];
        size_t len = fread(buf, 1, sizeof buf - 1, stdin);
        buf[len] = 0;
        uint32_t n;
        float a;
        if (len == sizeof buf - 1 || memchr(buf, 0, len) || parse_input(buf, &n, &a) < 0) {
                fprintf(stderr, "cuda-saxpy: expected \"N [A]\" on stdin: N elements from 1 to %u, A a number\n",
                        N_MAX);
                return EXIT_USAGE;
        }

        float *x = (float *) malloc((size_t) n * sizeof(float));
        float *y = (float *) malloc((size_t) n * sizeof(float));   /* the GPU's answer */
        float *ref = (float *) malloc((size_t) n * sizeof(float)); /* the CPU's */
        if (!x || !y || !ref) {
                fprintf(stderr, "cuda-saxpy: out of memory for %u elements\n", n);
                return EXIT_USAGE;
        }
        for (uint32_t i = 0; i < n; i++) {
                x[i] = x_at(i);
                y[i] = ref[i] = y_at(i);
        }
        saxpy_cpu(n, a, x, ref);

        const char *device = "none";
        char compute[32] = "";
        size_t memory = 0;
        double kernel_ms = 0;
#ifdef __CUDACC__
        GpuRun g;
        memset(&g, 0, sizeof g);
        if (saxpy_gpu(n, a, x, y, &g) < 0)
                return EXIT_CUDA;
        device = g.name;
        snprintf(compute, sizeof compute, "%d.%d", g.major, g.minor);
        memory = g.memory;
        kernel_ms = g.kernel_ms;
#else
        memcpy(y, ref, (size_t) n * sizeof(float));  /* no GPU in this build: the reference alone */
#endif

        uint32_t mismatches = 0, first_bad = 0;
        double checksum = 0;
        for (uint32_t i = 0; i < n; i++) {
                if (memcmp(&y[i], &ref[i], sizeof(float)) != 0 && mismatches++ == 0)
                        first_bad = i;
                checksum += (double) y[i];
        }
        /* device names are plain ASCII; anything else is replaced so the JSON stays valid */
        char dev[256];
        size_t k = 0;
        for (const char *p = device; *p && k < sizeof dev - 1; p++)
                dev[k++] = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? *p : '?';
        dev[k] = 0;
        printf("{\"n\": %u, \"a\": %.9g, \"device\": \"%s\", \"compute\": \"%s\", \"memory_bytes\": %zu, "
               "\"kernel_ms\": %.3f, \"checksum\": %.17g, \"y\": [%.9g, %.9g], \"mismatches\": %u}\n",
               n, (double) a, dev, compute, memory, kernel_ms, checksum, (double) y[0], (double) y[n - 1],
               mismatches);
        if (mismatches) {
                fprintf(stderr, "cuda-saxpy: %u of %u elements differ from the CPU's; the first at %u: "
                        "GPU %.9g, CPU %.9g\n", mismatches, n, first_bad, (double) y[first_bad],
                        (double) ref[first_bad]);
                return EXIT_MISMATCH;
        }
        free(x);
        free(y);
        free(ref);
        return 0;
}
