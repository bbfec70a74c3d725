using System.Diagnostics;
using OnnxQuant.Gptq;
using OnnxQuant.Quantization;

namespace OnnxQuant.Bench.Awq;

/// <summary>
/// GPTQ on one Llama-7B-shaped decoder layer (`--gptq`): per input, H from the rows and its factor, then the rounding of
/// every linear reading it; the seconds per part and a 7B projection (32 identical layers).
/// </summary>
internal static class GptqLayerBench
{
    public static void Run(BenchSettings settings)
    {
        var layer = SyntheticLayer.Create(settings.Hidden, settings.Intermediate, settings.Rows, seed: 1);
        var options = new Int4QuantOptions { BlockSize = 128 };
        Console.WriteLine($"GPTQ layer: hidden {settings.Hidden}, intermediate {settings.Intermediate}, {settings.Rows} rows, act-order, blocks of 128");
        var process = Process.GetCurrentProcess();
        var cpuStart = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        double factorSeconds = 0, roundSeconds = 0;
        foreach (var group in layer.Groups)
        {
            var clock = Stopwatch.StartNew();
            var factor = HessianFactor.FromRows(group.Rows, new GptqOptions());
            double f = clock.Elapsed.TotalSeconds;
            clock.Restart();
            foreach (var w in group.Weights)
                GptqQuantizer.Quantize(w.Values, group.Rows.Cols, w.N, factor, options, bits: 4);
            double r = clock.Elapsed.TotalSeconds;
            factorSeconds += f;
            roundSeconds += r;
            Console.WriteLine($"  {group.Name,-8} K={group.Rows.Cols,-6} H + factor {f,7:0.0} s, rounding {group.Weights.Count} linear(s) {r,7:0.0} s");
        }
        wall.Stop();
        process.Refresh();
        double cpu = (process.TotalProcessorTime - cpuStart).TotalSeconds;
        double share = cpu / (wall.Elapsed.TotalSeconds * Environment.ProcessorCount);
        double layerSeconds = wall.Elapsed.TotalSeconds;
        Console.WriteLine($"layer: {layerSeconds:0.0} s wall (H + factors {factorSeconds:0.0} s, rounding {roundSeconds:0.0} s), {cpu:0.0} s CPU over " +
            $"{Environment.ProcessorCount} cores (this process got {share:P0} of the machine), peak working set {process.PeakWorkingSet64 / 1e9:0.00} GB");
        Console.WriteLine($"7B projection (32 such layers, {settings.Rows} rows): {32 * layerSeconds / 60:0.0} min wall as measured here, " +
            $"{32 * layerSeconds * share / 60:0.0} min on the same {Environment.ProcessorCount} cores unshared");
    }
}
