using System.Text.Json;
using Microsoft.ML.OnnxRuntimeGenAI;

// Greedy generation with ONNX Runtime GenAI from a reference model folder and from other folders (e.g. quantized by
// OnnxQuant), and how far they agree. Usage:
//   dotnet run --project tools/genai-run -- --reference FOLDER [--compare FOLDER ...] --prompts FILE [--tokens 32]
// The prompts file has one prompt a line. Prints one JSON document on stdout (see README, "ONNX Runtime GenAI").
// Exit codes: 0 ok, 2 usage, 3 a folder GenAI cannot load or run (GenAI's message on stderr).

string? reference = null;
var compare = new List<string>();
string? promptsFile = null;
int tokens = 32;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--reference": reference = Next(); break;
        case "--compare": compare.Add(Next()); break;
        case "--prompts": promptsFile = Next(); break;
        case "--tokens": tokens = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine($"error: unknown argument '{args[i]}'");
            return 2;
    }
}
if (reference is null || promptsFile is null || tokens < 1)
{
    Console.Error.WriteLine("usage: genai-run --reference FOLDER [--compare FOLDER ...] --prompts FILE [--tokens N]");
    return 2;
}
var prompts = File.ReadAllLines(promptsFile).Where(l => l.Trim().Length > 0).ToList();

Dictionary<string, object> Report(string folder, List<int[]> generated, List<int[]>? against, Tokenizer tokenizer)
{
    var report = new Dictionary<string, object>
    {
        ["folder"] = folder,
        ["generated_tokens"] = generated.Select(g => g.Length).ToArray(),
        ["texts"] = generated.Select(g => tokenizer.Decode(g)).ToArray(),
        ["ids"] = generated,
    };
    if (against is not null)
    {
        // Position-wise agreement over all prompts' tokens, and each prompt's agreeing prefix (greedy decoding
        // diverges for good after the first different token, so the prefix is the stricter figure).
        int same = 0, total = 0;
        var prefixes = new int[generated.Count];
        for (int p = 0; p < generated.Count; p++)
        {
            int n = Math.Min(generated[p].Length, against[p].Length);
            total += Math.Max(generated[p].Length, against[p].Length);
            bool diverged = false;
            for (int t = 0; t < n; t++)
            {
                if (generated[p][t] == against[p][t]) same++;
                if (!diverged && generated[p][t] != against[p][t]) { diverged = true; prefixes[p] = t; }
            }
            if (!diverged) prefixes[p] = n;
        }
        report["token_agreement"] = total == 0 ? 0.0 : (double)same / total;
        report["agreeing_prefix"] = prefixes;
        report["mean_agreeing_prefix"] = prefixes.Average();
    }
    return report;
}

var promptIds = new List<int[]>();

List<int[]> Generate(string folder, out Tokenizer tokenizer, out Model model)
{
    model = new Model(folder);
    tokenizer = new Tokenizer(model);
    var results = new List<int[]>();
    foreach (var prompt in prompts)
    {
        using var sequences = tokenizer.Encode(prompt);
        int promptLength = sequences[0].Length;
        if (promptIds.Count < prompts.Count)
            promptIds.Add(sequences[0].ToArray());
        using var settings = new GeneratorParams(model);
        settings.SetSearchOption("do_sample", false);
        settings.SetSearchOption("max_length", promptLength + tokens);
        settings.SetSearchOption("min_length", promptLength + tokens); // no early end-of-text: always `tokens` new tokens
        using var generator = new Generator(model, settings);
        generator.AppendTokenSequences(sequences);
        while (!generator.IsDone())
            generator.GenerateNextToken();
        results.Add(generator.GetSequence(0)[promptLength..].ToArray());
    }
    return results;
}

try
{
    var runs = new List<Dictionary<string, object>>();
    var baseline = Generate(reference, out var refTokenizer, out var refModel);
    runs.Add(Report(reference, baseline, null, refTokenizer));
    foreach (var folder in compare)
    {
        var generated = Generate(folder, out var tokenizer, out var model);
        runs.Add(Report(folder, generated, baseline, tokenizer));
        tokenizer.Dispose();
        model.Dispose();
    }
    refTokenizer.Dispose();
    refModel.Dispose();
    Console.WriteLine(JsonSerializer.Serialize(new { tokens, prompts = prompts.Count, prompt_ids = promptIds, runs }));
    return 0;
}
catch (OnnxRuntimeGenAIException e)
{
    Console.Error.WriteLine($"error: ONNX Runtime GenAI cannot run the folder: {e.Message}");
    return 3;
}
