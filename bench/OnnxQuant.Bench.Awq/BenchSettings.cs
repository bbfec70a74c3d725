using System.Diagnostics;
using OnnxQuant.Awq;
using OnnxQuant.Numerics;

namespace OnnxQuant.Bench.Awq;

internal sealed record BenchSettings(int Hidden, int Intermediate, int Rows, int Grid, int ClipSteps, bool Clip, bool GemmOnly)
{
    public static BenchSettings Parse(string[] args)
    {
        int Int(string name, int fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
        }
        return new BenchSettings(Int("--hidden", 4096), Int("--intermediate", 11008), Int("--rows", 512), Int("--grid", 20),
            Int("--clip-steps", 20), !args.Contains("--no-clip"), args.Contains("--gemm"));
    }
}

/// <summary>The raw matrix multiply on the search's typical shapes.</summary>
internal static class GemmThroughput
{
    public static void Run()
    {
        foreach (var (m, k, n) in new[] { (512, 4096, 4096), (512, 4096, 11008), (512, 11008, 4096), (512, 128, 4096) })
        {
            var rng = new Random(1);
            var a = new float[m * k];
            var b = new float[k * n];
            for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble();
            for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble();
            var c = new float[m * n];
            double best = double.MaxValue, bestCpu = double.MaxValue;
            var process = Process.GetCurrentProcess();
            for (int rep = 0; rep < 3; rep++)
            {
                process.Refresh();
                var cpu = process.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                MatrixMultiply.Multiply(MatrixView.Of(a, m, k), MatrixView.Of(b, k, n), MatrixView.Of(c, m, n));
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
                process.Refresh();
                bestCpu = Math.Min(bestCpu, (process.TotalProcessorTime - cpu).TotalSeconds);
            }
            // Wall time suffers from other jobs on a shared machine; CPU time counts only this process's cores.
            Console.WriteLine($"  [{m} x {k}] x [{k} x {n}]: {best * 1e3:0.0} ms wall ({2.0 * m * k * n / best / 1e9:0.0} GFLOP/s), " +
                $"{bestCpu * 1e3:0.0} ms CPU ({2.0 * m * k * n / bestCpu / 1e9:0.0} GFLOP per CPU-second)");
        }
    }
}
