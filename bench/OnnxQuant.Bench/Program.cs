using System.Globalization;
using System.Text;
using OnnxQuant.Bench;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;

// Usage: OnnxQuant.Bench [--samples N] [--seq-len N] [--threads N] [--repeat N] [--out bench/results/calibration.md]
// Measures calibration tokens/s against plain ONNX Runtime inference of the same model and the same token windows,
// alternating the two (baseline, calibration, baseline, ...) so background load hits both alike; reports the medians.
var arguments = Args.Parse(args);
string root = Args.RepoRoot();
var settings = new SessionSettings { Device = ExecutionDevice.Cpu, Threads = arguments.Threads };
var rows = new List<BenchRow>();

string minilm = Path.Combine(root, "models", "minilm", "model.onnx");
if (File.Exists(minilm))
{
    using var model = ModelFile.Load(minilm);
    var data = CalibrationData.Load(new DataOptions { Samples = arguments.Samples, SequenceLength = arguments.SequenceLength, TokenizerPath = Path.Combine(root, "models", "minilm", "vocab.txt") }, minilm);
    rows.Add(Measure("MiniLM-L6 (all-MiniLM-L6-v2)", model, data, settings, arguments.Repeat));
}
else
{
    Console.Error.WriteLine($"skipping MiniLM: {minilm} is missing (run models/fetch-minilm.sh)");
}
foreach (var (name, model, data) in BenchFixtures.Create(arguments))
    using (model)
        rows.Add(Measure(name, model, data, settings, arguments.Repeat));

var table = BenchRow.Markdown(rows, arguments, settings);
Console.WriteLine(table);
if (arguments.Output is not null)
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(arguments.Output))!);
    File.WriteAllText(arguments.Output, table, new UTF8Encoding(false));
    Console.Error.WriteLine($"wrote {arguments.Output}");
}

static BenchRow Measure(string name, OnnxModel model, CalibrationDataset data, SessionSettings settings, int repeat)
{
    var options = new CalibrationOptions { BatchSize = 1 };
    // Warm-up: first sessions pay for page faults and ORT's kernel selection.
    PlainInference.Run(model, Subset(data, 1), settings, 1);
    Calibrator.Run(model, Subset(data, 1), options, settings);
    var plain = new List<double>();
    var plainLoop = new List<double>();
    var calib = new List<double>();
    var calibLoop = new List<double>();
    var reduce = new List<double>();
    int tensors = 0;
    for (int i = 0; i < repeat; i++)
    {
        var (total, loop) = PlainInference.Run(model, data, settings, 1);
        plain.Add(total.TotalSeconds);
        plainLoop.Add(loop.TotalSeconds);
        var result = Calibrator.Run(model, data, options, settings);
        calib.Add(result.Elapsed.TotalSeconds);
        calibLoop.Add((result.Elapsed - result.SessionTime).TotalSeconds);
        reduce.Add(result.ReductionWait.TotalSeconds);
        tensors = result.Stats.Tensors.Count;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name}: plain {plain[^1]:0.000}s (loop {plainLoop[^1]:0.000}s), calibration {calib[^1]:0.000}s (loop {calibLoop[^1]:0.000}s, sessions {result.SessionTime.TotalSeconds:0.000}s, ORT runs {result.InferenceTime.TotalSeconds:0.000}s, reduction {result.ReductionTime.TotalSeconds:0.000}s overlapped, waited {result.ReductionWait.TotalSeconds:0.000}s, {result.Runs} run(s))"));
    }
    var pairRatios = calib.Zip(plain, (c, p) => c / p).ToList();
    return new BenchRow(name, data.TotalTokens, Median(plain), Median(plainLoop), Median(calib), Median(calibLoop), Median(reduce), tensors,
        pairRatios.Min(), pairRatios.Max());
}

static CalibrationDataset Subset(CalibrationDataset data, int n) => data with { Samples = data.Samples.Take(n).ToList() };

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : 0.5 * (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]);
}
