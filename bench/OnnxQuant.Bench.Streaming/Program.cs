using System.Globalization;
using System.Text;
using OnnxQuant.Bench.Streaming;
using OnnxQuant.Tests.Reliability;

// Usage: streaming-bench <onnxquant.dll> <work-folder> [--layers N] [--results bench/results/streaming.md]
//        streaming-bench <onnxquant.dll> <work-folder> --decode [--layers 8] [--runs 15] [--results bench/results/decode.md]
// Generates a 7B-wide fp16 Llama of N layers (default 8: about 3.8 GB) streamed into <work-folder>, then runs each
// pass as `dotnet <onnxquant.dll> ...` and records wall time and peak RSS of the child.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: streaming-bench <onnxquant.dll> <work-folder> [--layers N] [--results FILE] [--passes w4,w8,...]");
    return 2;
}
string cli = Path.GetFullPath(args[0]), work = Path.GetFullPath(args[1]);
int layers = int.Parse(Option("--layers") ?? "8", CultureInfo.InvariantCulture);
string? results = Option("--results");
var chosen = (Option("--passes") ?? string.Join(",", BenchPasses.All.Select(p => p.Key))).Split(',');

if (args.Contains("--decode"))
    return DecodeBench.Run(cli, work, layers, results, int.Parse(Option("--runs") ?? "15", CultureInfo.InvariantCulture));

var options = StreamedLlamaOptions.Wide(layers);
Directory.CreateDirectory(work);
string model = Path.Combine(work, "model.onnx");
var clock = System.Diagnostics.Stopwatch.StartNew();
if (!File.Exists(model) || new FileInfo(model + ".data").Length < options.WeightBytes / 2)
    StreamedLlama.Write(options, work);
Console.Error.WriteLine($"model: {options.WeightBytes / 1e9:F2} GB fp16 ({layers} layers), written in {clock.Elapsed.TotalSeconds:F1} s");

// The yardstick: `cp` of the data file with the file in the page cache (read once first), timed like a pass.
string data = model + ".data", copy = Path.Combine(work, "copy.data");
using (var warm = File.OpenRead(data))
    warm.CopyTo(Stream.Null, 1 << 20);
var cp = ChildProcess.Run("cp", [data, copy]);
File.Delete(copy);
Console.Error.WriteLine($"cp of the data file: {cp.Seconds:F2} s");

var rows = new List<string>();
foreach (var pass in BenchPasses.All.Where(p => chosen.Contains(p.Key)))
{
    string output = Path.Combine(work, pass.Key + ".onnx");
    var run = ChildProcess.Run("dotnet", [cli, .. pass.Arguments(model, output)]);
    long outBytes = File.Exists(output) ? new FileInfo(output).Length + (File.Exists(output + ".data") ? new FileInfo(output + ".data").Length : 0) : 0;
    string row = $"| {pass.Title} | `{string.Join(' ', pass.Arguments("model.onnx", pass.Key + ".onnx"))}` | {run.ExitCode} | {run.Seconds:F1} s | " +
        $"{run.Seconds / cp.Seconds:F1}x | {run.PeakRssBytes / 1e6:F0} MB | {(double)run.PeakRssBytes / options.WeightBytes:F3} | {(double)run.PeakRssBytes / options.LargestTensorBytes:F2} | {outBytes / 1e9:F2} GB |";
    Console.WriteLine(row);
    if (run.ExitCode != 0)
        Console.Error.WriteLine(run.Stderr);
    rows.Add(row);
    foreach (var f in new[] { output, output + ".data" })
        File.Delete(f);
}

if (results is not null)
{
    var text = new StringBuilder();
    text.AppendLine("# Streaming: peak memory and time of each pass on a multi-GB model").AppendLine();
    text.AppendLine($"Produced by `dotnet run -c Release --project bench/OnnxQuant.Bench.Streaming -- <onnxquant.dll> <work> --layers {layers} --results {results}` " +
        $"on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {MachineText.Describe()}.").AppendLine();
    text.AppendLine($"Model: a 7B-wide fp16 Llama (hidden {options.Hidden}, intermediate {options.Intermediate}, vocab {options.Vocab}) with {layers} layers, " +
        $"{options.WeightBytes / 1e9:F2} GB of weights in one external data file, generated chunk by chunk (never held in memory). " +
        $"Largest single tensor: {options.LargestTensorBytes / 1e6:F0} MB (the embedding / LM head). Each pass runs as the Release CLI in a child process " +
        "under `/usr/bin/time -v`; peak RSS is the kernel's maximum resident set of that process (page cache of the memory-mapped input counts while mapped).").AppendLine();
    text.AppendLine("Neither pass needs calibration, so ONNX Runtime never loads the model; `--no-verify` skips the post-pass ORT check, which would load the emitted model.").AppendLine();
    text.AppendLine($"`cp` of the {options.WeightBytes / 1e9:F2} GB data file (in the page cache) took {cp.Seconds:F2} s in the same run; **x cp** is each pass's time over that.").AppendLine();
    text.AppendLine($"| pass | command | exit | time | x cp | peak RSS | / model ({options.WeightBytes / 1e9:F2} GB) | / largest tensor ({options.LargestTensorBytes / 1e6:F0} MB) | output |");
    text.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    foreach (var row in rows)
        text.AppendLine(row);
    File.WriteAllText(results, text.ToString());
}
return 0;

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
