/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/process.c -- process_* from /proc/self/stat, /proc/self/fd and the RLIMIT_NOFILE
 * soft limit, the way the Prometheus client libraries define them; and difyguard_build_info. */
#include "server/obs/process.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/obs/metrics.h"

#include "dg_revision.h" /* generated at build time: DG_REVISION */

/* The boot time (unix seconds) from /proc/stat's btime line. */
static double
boot_time(void)
{
    char line[256];
    double bt = 0;
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long v;
        if (sscanf(line, "btime %llu", &v) == 1) {
            bt = (double)v;
            break;
        }
    }
    fclose(f);
    return bt;
}

static double
count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    double n = 0;
    if (d == NULL)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

bool
process_stats_read(struct process_stats *out)
{
    char buf[1024];
    unsigned long long ut, st, start, vsize;
    long long rss;
    struct rlimit rl;
    size_t n = 0;
    FILE *f = fopen("/proc/self/stat", "re");

    memset(out, 0, sizeof *out);
    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses and may hold spaces: state (3)
     * ... utime (14) stime (15) ... starttime (22) vsize (23) rss (24). */
    const char *p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu %lld",
               &ut, &st, &start, &vsize, &rss) != 5)
        return false;
    double tck = (double)sysconf(_SC_CLK_TCK);
    out->cpu_seconds = (double)(ut + st) / tck;
    out->virtual_bytes = (double)vsize;
    out->resident_bytes = (double)rss * (double)sysconf(_SC_PAGESIZE);
    out->start_time_seconds = boot_time() + (double)start / tck;
    out->open_fds = count_fds();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
    return true;
}

void
process_metrics(const void *self, struct metrics_out *o)
{
    struct process_stats s;
    (void)self;

    metrics_family(o, "difyguard_build_info", "gauge",
                   "Build metadata: the version and source revision of this binary (value 1).");
    metrics_sample2(o, "difyguard_build_info", "version", DG_VERSION, "revision", DG_REVISION, 1);
    metrics_family(o, "difyguard_log_lines_dropped_total", "counter",
                   "Log lines dropped because the log output (stdout) was not read fast enough.");
    metrics_sample(o, "difyguard_log_lines_dropped_total", (double)log_dropped());
    if (!process_stats_read(&s))
        return;
    metrics_family(o, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
    metrics_sample(o, "process_cpu_seconds_total", s.cpu_seconds);
    metrics_gauge(o, "process_resident_memory_bytes", "Resident memory size in bytes.",
                  s.resident_bytes);
    metrics_gauge(o, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                  s.virtual_bytes);
    metrics_gauge(o, "process_open_fds", "Number of open file descriptors.", s.open_fds);
    metrics_gauge(o, "process_max_fds", "Maximum number of open file descriptors.", s.max_fds);
    metrics_gauge(o, "process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.", s.start_time_seconds);
}
