using System.Text.Json;

namespace OnnxQuant.Bench.Schemes;

/// <summary>
/// `--merge`: the rows of a partial run replace the saved rows of the same model and scheme in schemes.json and the
/// rest are kept, so adding schemes does not need every scheme rerun. The note says which rows come from which run,
/// because their timings come from different hours of a shared machine (accuracy and size do not depend on that).
/// </summary>
internal static class MergedResults
{
    public sealed record Saved(DateTime Started, bool Quick, List<CalibrationRow> Calibrations, List<SchemeRow> Rows, string? Merged);

    public static Saved Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"--merge: {path} is missing: run the whole bench first", path);
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        var root = document.RootElement;
        return new Saved(root.GetProperty("started").GetDateTime(), root.GetProperty("quick").GetBoolean(),
            root.GetProperty("calibrations").Deserialize<List<CalibrationRow?>>(options)?.OfType<CalibrationRow>().ToList() ?? [],
            root.GetProperty("rows").Deserialize<List<SchemeRow>>(options) ?? [],
            root.TryGetProperty("merged", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null);
    }

    public static (List<SchemeRow> Rows, Dictionary<string, CalibrationRow?> Calibrations, string Note) Merge(Saved saved, List<SchemeRow> fresh,
        Dictionary<string, CalibrationRow?> freshCalibrations, DateTime started, string arguments)
    {
        var replaced = fresh.Select(r => (r.Model, r.Scheme)).ToHashSet();
        var kept = saved.Rows.Where(r => !replaced.Contains((r.Model, r.Scheme))).ToList();
        var order = BenchPlan.Schemes.Select((s, i) => (s.Name, i)).ToDictionary(p => p.Name, p => p.i);
        var modelOrder = saved.Rows.Concat(fresh).Select(r => r.Model).Distinct().ToList();
        var rows = kept.Concat(fresh)
            .OrderBy(r => modelOrder.IndexOf(r.Model)).ThenBy(r => order.GetValueOrDefault(r.Scheme, int.MaxValue)).ToList();
        var calibrations = saved.Calibrations.ToDictionary(c => c.Model, c => (CalibrationRow?)c);
        foreach (var (model, row) in freshCalibrations)
            calibrations[model] = row;
        string earlier = saved.Merged is null ? $"{saved.Started:yyyy-MM-dd HH:mm} UTC (whole run)" : $"{saved.Started:yyyy-MM-dd HH:mm} UTC ({saved.Merged})";
        string note = $"**Merged:** {fresh.Count} rows ({string.Join(", ", fresh.Select(r => r.Scheme).Distinct())} on "
            + $"{string.Join(", ", fresh.Select(r => r.Model).Distinct())}, and those models' calibration) were run on {started:yyyy-MM-dd HH:mm} UTC "
            + $"with `-- {arguments}`; the other {kept.Count} rows are from the run of {earlier}. Accuracy and size do not depend on the hour; "
            + "times and latencies of rows from different runs saw different load on this shared machine.";
        return (rows, calibrations, note);
    }
}
