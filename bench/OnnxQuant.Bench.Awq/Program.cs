using System.Diagnostics;
using System.Globalization;
using OnnxQuant.Awq;
using OnnxQuant.Bench.Awq;
using OnnxQuant.Quantization;

// Speed of AWQ's search on one Llama-shaped decoder layer with random weights and outlier activation channels:
// seconds per group and per layer, the matrix throughput reached, and the projected time for a 7B model.
// Usage: dotnet run -c Release --project bench/OnnxQuant.Bench.Awq [--hidden 4096] [--intermediate 11008] [--rows 512]
//        [--grid 20] [--clip-steps 20] [--no-clip] [--gemm] [--gptq]   (--gptq: GPTQ on the layer instead; use --rows 2048)
var settings = BenchSettings.Parse(args);
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
Console.WriteLine($"machine: {Environment.ProcessorCount} logical cores, {(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512" : "AVX2")} kernel");
if (settings.GemmOnly)
{
    GemmThroughput.Run();
    return;
}
if (args.Contains("--gptq"))
{
    GptqLayerBench.Run(settings);
    return;
}

var layer = SyntheticLayer.Create(settings.Hidden, settings.Intermediate, settings.Rows, seed: 1);
var search = new AwqOptions { Quantization = new Int4QuantOptions { BlockSize = 128 }, GridPoints = settings.Grid, ClipSteps = settings.ClipSteps };
Console.WriteLine($"layer: hidden {settings.Hidden}, intermediate {settings.Intermediate}, {settings.Rows} rows, {settings.Grid} grid points, " +
    (settings.Clip ? $"{settings.ClipSteps + 1} clip candidates" : "no clip"));

var process = Process.GetCurrentProcess();
double scaleSeconds = 0, clipSeconds = 0, scaleUnits = 0, clipUnits = 0;
var cpuStart = process.TotalProcessorTime;
var wall = Stopwatch.StartNew();
foreach (var group in layer.Groups)
{
    var clock = Stopwatch.StartNew();
    var result = AwqScaleSearch.Search(group.Rows, group.MeanAbs, group.Weights, search);
    double s = clock.Elapsed.TotalSeconds;
    long parameters = group.Weights.Sum(w => (long)w.Values.Length);
    scaleSeconds += s;
    scaleUnits += (double)parameters * settings.Rows * settings.Grid;

    double c = 0;
    long clipped = 0;
    if (settings.Clip)
    {
        clock.Restart();
        foreach (var w in group.Weights.Where(w => !group.QueryKey.Contains(w.Name)))
        {
            AwqClipSearch.Search(group.Rows, w.Values, w.N, search);
            clipped += w.Values.Length;
        }
        c = clock.Elapsed.TotalSeconds;
        clipSeconds += c;
        clipUnits += (double)clipped * settings.Rows * (settings.ClipSteps + 1);
    }
    Console.WriteLine($"  {group.Name,-8} {parameters / 1e6,7:0.0}M params  r={result.Ratio:0.00} awq/rtn={result.BestLoss / result.RtnLoss:0.000}  " +
        $"scale search {s,7:0.00} s ({2.0 * parameters * settings.Rows * settings.Grid / s / 1e9:0.0} GFLOP/s)" +
        (settings.Clip ? $"  clip {c,7:0.00} s" : ""));
}
wall.Stop();
process.Refresh();
double cpu = (process.TotalProcessorTime - cpuStart).TotalSeconds;
// The machine is shared: wall time includes waiting for other jobs. CPU time / cores is what a dedicated machine would take.
double share = cpu / (wall.Elapsed.TotalSeconds * Environment.ProcessorCount);
Console.WriteLine($"layer: {wall.Elapsed.TotalSeconds:0.0} s wall, {cpu:0.0} s CPU over {Environment.ProcessorCount} cores " +
    $"(this process got {share:P0} of the machine), peak working set {process.PeakWorkingSet64 / 1e9:0.00} GB");

// Projection: measured seconds per (parameter x row x candidate) times the 7B model's count.
const int Layers7B = 32, Hidden7B = 4096, Intermediate7B = 11008, Rows7B = 512, Grid7B = 20, Clip7B = 21;
double layerParams = 4.0 * Hidden7B * Hidden7B + 3.0 * Hidden7B * Intermediate7B;
double clipParams = layerParams - 2.0 * Hidden7B * Hidden7B;   // q and k are not clipped
double scalePerUnit = scaleSeconds / scaleUnits;
double projectedScale = Layers7B * layerParams * Rows7B * Grid7B * scalePerUnit;
double projectedClip = settings.Clip ? Layers7B * clipParams * Rows7B * Clip7B * (clipSeconds / clipUnits) : 0;
Console.WriteLine($"cost: {scalePerUnit * 1e12:0.00} s per 10^12 (parameter x row x grid point) in the scale search" +
    (settings.Clip ? $", {clipSeconds / clipUnits * 1e12:0.00} in the clip search" : ""));
Console.WriteLine($"7B projection (32 layers x (4 x 4096^2 + 3 x 4096 x 11008) = {Layers7B * layerParams / 1e9:0.00}B params, 512 rows, " +
    $"20 grid points{(settings.Clip ? " + 21 clip candidates on all but q/k" : "")}): " +
    $"{(projectedScale + projectedClip) / 60:0.0} min wall as measured here ({projectedScale / 60:0.0} scale + {projectedClip / 60:0.0} clip), " +
    $"{(projectedScale + projectedClip) * share / 60:0.0} min on the same {Environment.ProcessorCount} cores unshared");
