using System.CommandLine;
using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Report;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.Recipes;
using OnnxQuant.Statistics;

namespace OnnxQuant.Cli;

/// <summary>
/// `onnxquant calibrate model.onnx [--data ...] -o model.calib [--report report.html]`: records activation statistics
/// of the model's quantizable linears for SmoothQuant and AWQ. Progress goes to stderr, the summary (or --json) to stdout.
/// </summary>
public static class CalibrateCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "The ONNX model file." };
        var output = new Option<string?>("--output", "-o") { Description = "Statistics file to write (default: the model's path with .calib)." };
        var data = new Option<string[]>("--data") { Description = "Calibration data: text files, .jsonl (text or token-id arrays) or .ids files. Default: Jane Austen's Emma.", AllowMultipleArgumentsPerToken = true };
        var format = new Option<DataFormat>("--data-format") { Description = "How to read --data files (auto: by extension).", DefaultValueFactory = _ => DataFormat.Auto };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file or folder (default: next to the model): tokenizer.json, tokenizer.model, vocab.json + merges.txt, vocab.txt." };
        var samples = new Option<int>("--samples") { Description = "Number of calibration samples.", DefaultValueFactory = _ => 128 };
        var seqLen = new Option<int>("--seq-len")
        {
            Description = $"Tokens per sample (default: {CalibrationSettings.DefaultSeqLen} for a causal LM, {CalibrationSettings.DefaultEncoderSeqLen} for an encoder, within the model's context).",
            DefaultValueFactory = _ => CalibrationSettings.DefaultSeqLen,
        };
        var seed = new Option<int>("--seed") { Description = "Seed for picking text windows and sample rows.", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch") { Description = "Samples per inference run.", DefaultValueFactory = _ => 1 };
        var maxMemory = new Option<int>("--max-memory") { Description = "MiB the recorded activations may take (two batches are held at once); above it tensors are recorded in several runs. Block by block, half of it holds the values carried between blocks; the rest spills to a scratch file.", DefaultValueFactory = _ => 2048 };
        var sampleRows = new Option<int>("--sample-rows") { Description = "Activation rows (tokens) kept per tensor for AWQ.", DefaultValueFactory = _ => 512 };
        var runtime = new SessionArguments(threadsUse: "Threads for ONNX Runtime and the reduction");
        var stats = new Option<string?>("--stats") { Description = "Do not calibrate: summarise / draw this existing statistics file of the model." };
        var report = new Option<string?>("--report") { Description = "Draw per-channel max |x| of chosen tensors to this .html or .svg file." };
        var reportTensors = new Option<string[]>("--report-tensors") { Description = "Name fragments of tensors to draw (default: the most outlier-ridden).", AllowMultipleArgumentsPerToken = true };
        var wholeGraph = CalibrationArguments.WholeGraphOption();
        var blockSessions = CalibrationArguments.BlockSessionsOption();
        var top = new Option<int>("--top") { Description = "Tensors listed in the summary.", DefaultValueFactory = _ => 10 };
        var json = CliContext.JsonOption();
        var command = new Command("calibrate", "Record activation statistics (per-channel max/mean |x|, ranges, sample rows) of the model's quantizable linears.")
        {
            model, output, data, format, tokenizer, samples, seqLen, seed, batch, maxMemory, sampleRows, wholeGraph, blockSessions, runtime.Device, runtime.Threads, stats, report, reportTensors, top, json,
        };
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            string modelPath = parse.GetValue(model)!;
            using var loaded = ModelFile.Load(modelPath);
            bool asJson = parse.GetValue(json);
            CalibrationResult? result = null;
            CalibrationStats calibration;
            string? written = null;
            string? existing = parse.GetValue(stats);
            // Every output is checked before the work starts: a bad path fails in a second, not after calibrating.
            string? reportPath = parse.GetValue(report);
            if (reportPath is not null)
                OutputPaths.Check(reportPath, loaded, [.. parse.GetValue(data) ?? [], existing, parse.GetValue(output)]);
            if (existing is not null)
            {
                calibration = StatsFile.Read(existing);
                calibration.EnsureMatches(loaded.Graph, existing);
            }
            else
            {
                CalibrationArguments.EnsureDataFits(loaded, parse.GetValue(data) ?? [], modelPath);
                var dataOptions = new DataOptions
                {
                    Paths = parse.GetValue(data) ?? [],
                    Format = parse.GetValue(format),
                    TokenizerPath = parse.GetValue(tokenizer),
                    Samples = Positive(parse.GetValue(samples), "--samples"),
                    SequenceLength = Positive(parse.GetValue(seqLen), "--seq-len"),
                    Seed = parse.GetValue(seed),
                };
                var options = new CalibrationOptions
                {
                    BatchSize = Positive(parse.GetValue(batch), "--batch"),
                    MaxMemoryBytes = (long)Positive(parse.GetValue(maxMemory), "--max-memory") << 20,
                    SampleRowsPerTensor = Math.Max(0, parse.GetValue(sampleRows)),
                    Seed = dataOptions.Seed,
                    Sessions = CalibrationArguments.SessionsOf(parse, wholeGraph, blockSessions),
                };
                var session = runtime.Settings(parse, context);
                written = parse.GetValue(output) ?? Path.ChangeExtension(modelPath, ".calib");
                OutputPaths.Check(written, loaded, parse.GetValue(data) ?? []);
                var task = ModelTaskDetection.Detect(loaded.Graph).Task;
                bool given = ContextLengths.Explicit(parse, seqLen);
                result = ContextLengths.Calibrate(context, given ? parse.GetValue(seqLen) : null, CalibrationSettings.DefaultSeqLenFor(task), seqLen.Name,
                    loaded, modelPath, dataOptions, options, session, SequenceLimits.Find(loaded.Graph), context.Error,
                    dataset => context.Error.WriteLine(CalibrationArguments.StartLine(dataset, given ? null : task))).Result;
                calibration = result.Stats;
                StatsFile.Write(calibration, written);
            }
            if (reportPath is not null)
                ChannelReport.Write(calibration, reportPath, new ReportOptions { Tensors = parse.GetValue(reportTensors) ?? [] });
            var summary = CalibrationSummary.Create(modelPath, written, reportPath, calibration, result, Math.Max(1, parse.GetValue(top)));
            if (asJson)
                JsonOutput.Write(context.Out, summary);
            else
                CalibrationSummary.Print(context.CreateConsole(), summary);
            return (int)ExitCode.Ok;
        }));
        return command;
    }

    private static int Positive(int value, string option) =>
        value > 0 ? value : throw new OnnxQuantException(null, $"{option} must be at least 1 (got {value.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
}
