// What the guides' samples call but do not define: the user's own code.
interface Work {
  id?: number;
  fence?: number;
  signal?: AbortSignal;
}
declare function saveInvoice(work: Work): Promise<void>;
declare function buildReport(work?: Work): Promise<void>;
declare function publishReport(work?: Work): Promise<void>;
declare function pay(work?: Work): Promise<void>;
declare function render(): Promise<void>;
