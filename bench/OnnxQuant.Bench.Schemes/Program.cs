using System.Diagnostics;
using System.Text.Json;
using OnnxQuant.Bench.Schemes;
using OnnxQuant.Fixtures;

// Usage: dotnet run -c Release --project bench/OnnxQuant.Bench.Schemes -- [--quick] [--models a,b] [--schemes a,b] [--merge] [--no-build]
//        --merge: the rows run now replace those of the same model and scheme in bench/results/schemes.json, the others
//        are kept, and results.md says which rows come from which run (adding schemes needs no full rerun).
//        ... -- --replot   (redraws bench/results/schemes.png from schemes.json without running anything)
// Builds the Release CLI (unless --no-build), runs every scheme on every model through it, and writes
// bench/results.md (the comparison the README points to), bench/results/schemes.png and schemes.json.
// Work files go to bench/out/schemes (git-ignored).
bool quick = args.Contains("--quick");
if (args.Contains("--replot"))
    return Replot.FromJson(FindRoot());
bool build = !args.Contains("--no-build");
string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
var onlyModels = Value("--models")?.Split(',', StringSplitOptions.RemoveEmptyEntries);
var onlySchemes = Value("--schemes")?.Split(',', StringSplitOptions.RemoveEmptyEntries);

string root = FindRoot();
string outFolder = Path.Combine(root, "bench", "out", "schemes");
string results = Path.Combine(root, "bench", "results");
Directory.CreateDirectory(outFolder);
Directory.CreateDirectory(results);
var log = Console.Out;
var started = DateTime.UtcNow;
var clock = Stopwatch.StartNew();
string loadBefore = File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

if (build)
{
    log.WriteLine("building the Release CLI ...");
    var built = ChildRun.Run("dotnet", ["build", "src/OnnxQuant.Cli", "-c", "Release", "-nologo", "-v", "q", "-clp:ErrorsOnly"], root);
    if (built.ExitCode != 0)
    {
        Console.Error.WriteLine($"the Release build failed:\n{built.Stdout}{built.Stderr}");
        return 1;
    }
}
string onnxquant = Path.Combine(root, "src", "OnnxQuant.Cli", "bin", "Release", "net10.0", "onnxquant");
if (!File.Exists(onnxquant))
{
    Console.Error.WriteLine($"{onnxquant} is missing: build the CLI in Release (drop --no-build)");
    return 1;
}

var models = BenchPlan.Models(root, outFolder, quick).Where(m => onlyModels is null || onlyModels.Contains(m.Name)).ToList();
var schemes = BenchPlan.Schemes.Where(s => onlySchemes is null || s.Name == "fp32" || onlySchemes.Contains(s.Name)).ToList();
var runner = new BenchRunner(onnxquant, root, outFolder, quick, log);
var rows = new List<SchemeRow>();
var calibrations = new Dictionary<string, CalibrationRow?>();
foreach (var model in models)
{
    if (model.Name == "austen-lm-outliers")
    {
        string source = Path.Combine(root, "models", "austen-lm", "model.onnx");
        if (!File.Exists(source)) { log.WriteLine($"skipping {model.Name}: {source} is missing"); continue; }
        int norms = OutlierTwin.Write(source, model.ModelPath);
        log.WriteLine($"{model.Name}: outliers injected into {norms} norms -> {model.ModelPath}");
    }
    if (!File.Exists(model.ModelPath))
    {
        log.WriteLine($"skipping {model.Name}: {model.ModelPath} is missing{(model.Name == "minilm" ? " (run models/fetch-minilm.sh)" : "")}");
        continue;
    }
    var (calibration, modelRows) = runner.Run(model, schemes);
    calibrations[model.Name] = calibration;
    rows.AddRange(modelRows);
}

string table = Path.Combine(root, "bench", "results.md");
string? mergeNote = null;
if (args.Contains("--merge"))
{
    var previous = MergedResults.Read(Path.Combine(results, "schemes.json"));
    if (previous.Quick != quick)
    {
        Console.Error.WriteLine("--merge: the saved rows come from a run with a different --quick setting; rerun everything instead");
        return 1;
    }
    (rows, calibrations, mergeNote) = MergedResults.Merge(previous, rows, calibrations, started, string.Join(' ', args.Where(a => a != "--no-build")));
    models = BenchPlan.Models(root, outFolder, quick).Where(m => rows.Any(r => r.Model == m.Name)).ToList();
}
AccuracySizePlot.Write(Path.Combine(results, "schemes.png"), models, rows);
ResultsWriter.Write(table, "results/schemes.png", root, quick, started, clock.Elapsed, loadBefore, models, calibrations, rows, mergeNote);
File.WriteAllText(Path.Combine(results, "schemes.json"), JsonSerializer.Serialize(new { started, quick, calibrations = calibrations.Values, rows, merged = mergeNote },
    new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
log.WriteLine($"wrote {table} in {clock.Elapsed.TotalMinutes:0.0} min");
return 0;

static string FindRoot()
{
    for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "OnnxQuant.sln")))
            return dir.FullName;
    throw new InvalidOperationException("run the bench from inside the OnnxQuant repository");
}
