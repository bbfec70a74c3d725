using System.Text.Json;

namespace OnnxQuant.Bench.Schemes;

/// <summary>Redraws the plot from the rows a full run saved in bench/results/schemes.json (a figure change needs no 18-minute rerun).</summary>
internal static class Replot
{
    public static int FromJson(string root)
    {
        string results = Path.Combine(root, "bench", "results");
        string json = Path.Combine(results, "schemes.json");
        if (!File.Exists(json))
        {
            Console.Error.WriteLine($"{json} is missing: run the bench first");
            return 1;
        }
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        var rows = document.RootElement.GetProperty("rows").Deserialize<List<SchemeRow>>(options)
            ?? throw new InvalidDataException($"{json} has no rows");
        bool quick = document.RootElement.GetProperty("quick").GetBoolean();
        var models = BenchPlan.Models(root, Path.Combine(root, "bench", "out", "schemes"), quick).Where(m => rows.Any(r => r.Model == m.Name)).ToList();
        AccuracySizePlot.Write(Path.Combine(results, "schemes.png"), models, rows);
        Console.WriteLine($"redrew {Path.Combine(results, "schemes.png")} from {rows.Count} rows");
        return 0;
    }
}
